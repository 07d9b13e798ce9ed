"""An IAM endpoint whose every answer is megabytes long, in its body or its headers: an allowed
endpoint someone else runs."""

from __future__ import annotations

from tests.support.loopback_http import LoopbackHTTP, QuietHandler

CHUNK = b" " * (1024 * 1024)


# As many header lines, as long, as Python's http.client takes by default (100 of 64 KiB)
HEADER_LINES, HEADER_LINE = 99, "h" * 65_000


class LargeAnswerEndpoint:
    """Answers every request 200 with a body of `megabytes` MiB, sent as fast as it is read;
    or, `in_headers`, with 6 MB of headers and an empty body."""

    def __init__(self, megabytes: int, in_headers: bool = False) -> None:
        class Handler(QuietHandler):
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

        self._http = LoopbackHTTP(Handler)
        self.url = self._http.url

    def close(self) -> None:
        self._http.close()
