"""An IAM endpoint that drips its answer, a byte at a time: a slow AWS for serve's tests."""

from __future__ import annotations

import threading
import time
from typing import Any


class DrippingEndpoint:
    """Answers every request 200, then sends its body a byte at a time for `seconds`."""

    def __init__(self, seconds: float) -> None:
        import http.server

        body = b"<CreateAccessKeyResponse>" + b" " * 40 + b"</CreateAccessKeyResponse>"
        pause = seconds / len(body)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
