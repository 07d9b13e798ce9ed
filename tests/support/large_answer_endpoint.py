"""An IAM endpoint whose every answer is megabytes long, in its body or its headers: an allowed
endpoint someone else runs."""

from __future__ import annotations

import http.server
import threading
from typing import Any

CHUNK = b" " * (1024 * 1024)


# As many header lines, as long, as Python's http.client takes by default (100 of 64 KiB)
HEADER_LINES, HEADER_LINE = 99, "h" * 65_000


class LargeAnswerEndpoint:
    """Answers every request 200 with a body of `megabytes` MiB, sent as fast as it is read;
    or, `in_headers`, with 6 MB of headers and an empty body."""

    def __init__(self, megabytes: int, in_headers: bool = False) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                try:
                    if in_headers:
                        for line in range(HEADER_LINES):
                            self.send_header(f"X-Pad-{line}", HEADER_LINE)
                    self.send_header("Content-Length", str(megabytes * len(CHUNK)))
                    self.end_headers()
                    for _ in range(megabytes):
                        self.wfile.write(CHUNK)
                except OSError:
                    pass  # the client stopped reading: as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
