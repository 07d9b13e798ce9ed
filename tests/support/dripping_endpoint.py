"""An IAM endpoint that drips its answer, a byte at a time: a slow AWS for serve's tests."""

from __future__ import annotations

import time

from tests.support.loopback_http import LoopbackHTTP, QuietHandler


class DrippingEndpoint:
    """Answers every request 200, then sends its body a byte at a time for `seconds`."""

    def __init__(self, seconds: float) -> None:
        body = b"<CreateAccessKeyResponse>" + b" " * 40 + b"</CreateAccessKeyResponse>"
        pause = seconds / len(body)

        class Handler(QuietHandler):
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

        self.url = LoopbackHTTP(Handler).url
