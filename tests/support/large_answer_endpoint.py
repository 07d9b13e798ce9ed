"""An IAM endpoint whose every answer is megabytes long: an allowed endpoint someone else runs."""

from __future__ import annotations

import http.server
import threading
from typing import Any

CHUNK = b" " * (1024 * 1024)


class LargeAnswerEndpoint:
    """Answers every request 200 with a body of `megabytes` MiB, sent as fast as it is read."""

    def __init__(self, megabytes: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(megabytes * len(CHUNK)))
                self.end_headers()
                try:
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
