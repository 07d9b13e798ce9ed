"""A minimal IAM endpoint for the benchmark: CreateAccessKey answered with one fixed document.

It does no work of its own, so that what a benchmark measures against it is the client's cost.
Run as `python -m tests.support.canned_iam`: it prints its port on the first line, then serves until
killed.
"""

from __future__ import annotations

import http.server
import socket
import sys

BODY = (
    b'<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    b"<CreateAccessKeyResult><AccessKey><UserName>bench</UserName>"
    b"<AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>"
    b"<SecretAccessKey>canned-benchmark-secret-not-real</SecretAccessKey>"
    b"<CreateDate>2026-01-01T00:00:00Z</CreateDate></AccessKey></CreateAccessKeyResult>"
    b"<ResponseMetadata><RequestId>canned-request-id</RequestId></ResponseMetadata>"
    b"</CreateAccessKeyResponse>"
)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as IAM does

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every call, and the benchmark measures that.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_port, flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
