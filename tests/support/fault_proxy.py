"""A fault-injecting HTTP proxy between the action and the local IAM endpoint.

Each IAM action has a queue of faults; a request takes the next one (or passes through when the
queue is empty). Every request and what was done to it is logged, and the bodies the upstream
sent for CreateAccessKey are kept, so a test can compare the secrets IAM issued with the ones the
caller received.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.client
import http.server
import json
import queue
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

SECRET_IN_XML = re.compile(rb"<SecretAccessKey>([^<]+)</SecretAccessKey>")
ERROR_XML = (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>{kind}</Type>'
    "<Code>{code}</Code><Message>{message}</Message></Error>"
    "<RequestId>fault-proxy-0000</RequestId></ErrorResponse>"
)

ACCEPTED_XML = (
    '<{action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata>'
    "<RequestId>fault-proxy-late</RequestId></ResponseMetadata></{action}Response>"
)


# REST-JSON services name the action by method and path: EventBridge Scheduler's schedules.
_REST_ACTIONS = {
    ("POST", "schedules"): "CreateSchedule",
    ("GET", "schedules"): "GetSchedule",
    ("DELETE", "schedules"): "DeleteSchedule",
}


@dataclasses.dataclass(frozen=True)
class Fault:
    """What to do with one request. `forward` says whether IAM sees it at all."""

    name: str
    forward: bool
    status: int = 0  # 0: send upstream's answer (or none, with `drop`)
    code: str = ""
    drop: bool = False  # close the connection instead of answering
    hold: float = 0.0  # wait this long before answering
    body: bytes | None = None  # answer with this body instead of upstream's
    drip: float = 0.0  # send the body one byte at a time, this far apart
    rewrite: Callable[[bytes], bytes] | None = None  # send upstream's body changed by this
    meanwhile: Callable[[], object] | None = None  # run after forwarding, before answering
    # send half the body, wait this long, then reset the connection (0: an answer cut short)
    break_body: float | None = None


DROP_AFTER_FORWARD = Fault("reset after IAM acted", forward=True, drop=True)
ERROR_500_AFTER_FORWARD = Fault(
    "500 after IAM acted", forward=True, status=500, code="ServiceFailure"
)
ERROR_503_AFTER_FORWARD = Fault(
    "503 after IAM acted", forward=True, status=503, code="ServiceUnavailable"
)
ERROR_500_WITHOUT_FORWARD = Fault(
    "500, IAM not reached", forward=False, status=500, code="ServiceFailure"
)
THROTTLE = Fault("Throttling, IAM not reached", forward=False, status=400, code="Throttling")
DENY = Fault("AccessDenied", forward=False, status=403, code="AccessDenied")


def refuse(code: str, status: int = 403) -> Fault:
    """Answer with AWS error `code` without forwarding (IAM or STS never sees the request)."""
    return Fault(code, forward=False, status=status, code=code)


def hold_after_forward(seconds: float) -> Fault:
    return Fault(f"held {seconds:g}s after IAM acted", forward=True, hold=seconds)


def rewrite(name: str, change: Callable[[bytes], bytes]) -> Fault:
    """Forward, then answer with upstream's body changed by `change` (another IAM dialect)."""
    return Fault(name, forward=True, rewrite=change)


def answer(
    name: str,
    body: bytes,
    *,
    forward: bool = False,
    drip: float = 0.0,
    break_body: float | None = None,
) -> Fault:
    """Answer 200 with `body` (a hostile or broken endpoint)."""
    return Fault(name, forward=forward, status=200, body=body, drip=drip, break_body=break_body)


def body_broken_after_forward(seconds: float) -> Fault:
    """Forward; then half of IAM's answer, a pause of `seconds`, and the connection closed."""
    name = "answer cut short" if not seconds else f"answer stalled {seconds:g}s mid-body"
    return Fault(f"{name} after IAM acted", forward=True, rewrite=bytes, break_body=seconds)


@dataclasses.dataclass
class Exchange:
    action: str
    fault: str
    upstream_body: bytes = b""
    request_body: bytes = b""
    authorization: str = ""


class FaultProxy:
    """The proxy server; `faults[action]` is a deque of Faults consumed one per request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque
        )
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        # An eventually consistent IAM: these actions are accepted at once and applied (sent
        # upstream, in order) only this many seconds later, so reads show them late.
        self.late_actions: tuple[str, ...] = ()
        self.late_by = 0.0
        self._late: queue.SimpleQueue[tuple[float, str, dict[str, str], bytes]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._apply_late, daemon=True).start()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.handle(self)

            do_GET = do_DELETE = do_POST  # REST services (EventBridge Scheduler) use them too

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, action: str, *faults: Fault) -> None:
        with self.lock:
            self.faults[action].extend(faults)

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.late_actions, self.late_by = (), 0.0

    def show_late(self, seconds: float, *actions: str) -> None:
        """Play an eventually consistent IAM: `actions` (TagUser, say) are answered as accepted
        at once but take effect `seconds` later, in the order they were accepted."""
        with self.lock:
            self.late_actions, self.late_by = actions, seconds

    def mark(self) -> int:
        with self.lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges[mark:])

    def issued_secrets(self, mark: int) -> list[str]:
        """The secrets IAM issued behind the proxy since `mark` (CreateAccessKey answers as IAM
        sent them, whatever the proxy then did to them), in order."""
        return [
            secret.decode()
            for exchange in self.since(mark)
            if exchange.action == "CreateAccessKey"
            for secret in SECRET_IN_XML.findall(exchange.upstream_body)
        ]

    def issued_secret(self, mark: int) -> str:
        """The one secret IAM issued since `mark`."""
        (secret,) = self.issued_secrets(mark)
        return secret

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        # Query protocol (IAM, STS) names the action in the body; JSON protocol (Secrets
        # Manager, SSM) in the X-Amz-Target header.
        target = request.headers.get("X-Amz-Target", "")
        rest = _REST_ACTIONS.get((request.command, request.path.split("/")[1].split("?")[0]))
        named = rest or target.split(".")[-1]
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [named])[0]
        with self.lock:
            queue = self.faults.get(action)
            fault = queue.popleft() if queue else None
            exchange = Exchange(
                action,
                fault.name if fault else "pass",
                request_body=body,
                authorization=request.headers.get("Authorization", ""),
            )
            self.exchanges.append(exchange)
            late = self.late_by if fault is None and action in self.late_actions else 0.0
        if late:
            self._late.put((time.monotonic() + late, request.path, _headers(request), body))
            accepted = ACCEPTED_XML.format(action=action).encode()
            self._send(request, 200, [("Content-Type", "text/xml")], accepted)
            return
        upstream = (200, [], b"")
        if fault is None or fault.forward:
            upstream = self._forward(request, body)
            exchange.upstream_body = upstream[2]
        if fault is None:
            self._send(request, *upstream)
            return
        if fault.meanwhile is not None:
            fault.meanwhile()
        if fault.hold:
            time.sleep(fault.hold)
        if fault.drop:
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault.rewrite is not None:
            status, headers, payload = upstream
            self._send(
                request, status, headers, fault.rewrite(payload), fault.drip, fault.break_body
            )
        elif fault.body is not None:
            self._send(
                request, 200, [("Content-Type", "text/xml")], fault.body, fault.drip,
                fault.break_body,
            )  # fmt: skip
        elif fault.status and (target or rest):  # a JSON-protocol service: its error shape
            code = fault.code if fault.code.endswith("Exception") else fault.code + "Exception"
            error = json.dumps({"__type": code, "message": fault.name}).encode()
            self._send(
                request, fault.status, [("Content-Type", "application/x-amz-json-1.1")], error
            )
        elif fault.status:
            kind = "Receiver" if fault.status >= 500 else "Sender"
            xml = ERROR_XML.format(kind=kind, code=fault.code, message=fault.name).encode()
            self._send(request, fault.status, [("Content-Type", "text/xml")], xml)
        else:
            self._send(request, *upstream)

    def _apply_late(self) -> None:
        """Send the writes of an eventually consistent IAM upstream, each when it is due."""
        while True:
            due, path, headers, body = self._late.get()
            time.sleep(max(0.0, due - time.monotonic()))
            with contextlib.suppress(OSError):  # the endpoint stopped: the test is over
                self._send_upstream(path, headers, body)

    def _forward(
        self, request: http.server.BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._send_upstream(request.path, _headers(request), body, request.command)

    def _send_upstream(
        self, path: str, headers: dict[str, str], body: bytes, method: str = "POST"
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=30
        )
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() in ("content-type", "x-amzn-requestid")
            ]
            return response.status, kept, payload
        finally:
            connection.close()

    @staticmethod
    def _send(
        request: http.server.BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        drip: float = 0.0,
        break_body: float | None = None,
    ) -> None:
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        try:
            if break_body is not None:
                request.wfile.write(body[: len(body) // 2])
                request.wfile.flush()
                time.sleep(break_body)
                request.close_connection = True
                linger = struct.pack("ii", 1, 0)  # closed with a reset, not an orderly end
                request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                request.connection.close()
            elif drip:
                for byte in body:
                    request.wfile.write(bytes([byte]))
                    request.wfile.flush()
                    time.sleep(drip)
            else:
                request.wfile.write(body)
        except OSError:
            pass  # the client gave up: that is what a drip is for


def _headers(request: http.server.BaseHTTPRequestHandler) -> dict[str, str]:
    """The request's headers as they go upstream."""
    return {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection")}
