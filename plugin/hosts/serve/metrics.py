"""What an operator sees of `serve` without reading a payload: Prometheus metrics, served on
their own port (`--metrics-port`) by a small bounded HTTP server of this module's. No label
carries a user name, a key id or anything a caller chose: only the RPC's name and the error
code."""

from __future__ import annotations

import asyncio
import errno
import queue
import socket
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from plugin.contract.errors import ActionError, Category
from plugin.runtime import key_witness

PREFIX = "iam_create_access_key"
# Seconds, for every histogram: cut at the longest a call may run (--max-call-seconds), which
# ends the last bucket, so that a call cut at its limit lands in a bucket of its own.
_LADDER = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
# The metrics port's own bounds (prometheus_client's start_http_server holds a thread per
# connection, idle or not, for ever): one thread for every connection; at most this many
# waiting for their request (a new one closes the oldest, so a scrape is never locked out by
# idle ones), and this long for a request to arrive and for its answer to leave.
MAX_WAITING = 64
IDLE_SECONDS = 10.0
MAX_REQUEST_BYTES = 8192


def buckets(longest: float) -> tuple[float, ...]:
    """Histogram bounds up to `longest` seconds, and +Inf."""
    return (*(bound for bound in _LADDER if bound < longest), longest, float("inf"))


class Metrics:
    """The server's counters, gauges and histograms, in a registry of their own."""

    def __init__(self, longest_call: float = 300.0) -> None:
        # A counter's *_created series says when the process started counting, which
        # process_start_time_seconds says once: twice the series for nothing.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)  # memory, processor, open files, start time
        PlatformCollector(registry=registry)
        registry.register(GC_COLLECTOR)
        seconds = buckets(longest_call)
        self.calls = Counter(
            f"{PREFIX}_calls", "Calls answered, by RPC and error code", ["rpc", "error_code"],
            registry=registry,
        )  # fmt: skip
        self.refused = Counter(
            f"{PREFIX}_calls_refused_for_capacity",
            "ExecuteAction/TestCredentials calls refused because every slot was busy",
            ["rpc"],
            registry=registry,
        )
        self.refused_for_bytes = Counter(
            f"{PREFIX}_calls_refused_for_bytes_in_flight",
            "ExecuteAction calls refused because their context would pass --max-bytes-in-flight",
            ["rpc"],
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_calls_in_flight",
            "ExecuteAction/TestCredentials calls under way",
            registry=registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_execute_action_seconds",
            "How long ExecuteAction took",
            buckets=seconds,
            registry=registry,
        )
        self.created = Counter(f"{PREFIX}_keys_created", "Access keys created", registry=registry)
        self.undeliverable = Counter(
            f"{PREFIX}_keys_deleted_undeliverable",
            "Keys deleted because their secret could not be delivered (custody)",
            registry=registry,
        )
        self.hung_up = Counter(
            f"{PREFIX}_keys_deleted_caller_hung_up",
            "Keys deleted because the caller hung up before the answer",
            registry=registry,
        )
        self.left = Counter(
            f"{PREFIX}_keys_left",
            "Keys nobody received that could not be deleted: an operator must act on these",
            registry=registry,
        )
        self.user_waits = Histogram(
            f"{PREFIX}_wait_for_user_seconds",
            "Waits for IAM to show a new user",
            buckets=seconds,
            registry=registry,
        )
        self.usable_waits = Histogram(
            f"{PREFIX}_wait_until_usable_seconds",
            "Waits until STS accepted a new key",
            buckets=seconds,
            registry=registry,
        )

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port (a thread of its own); the port bound. ActionError
        (invalid input, one line naming the cause) if it cannot listen there."""
        return Exporter(self.registry).start(host, port)

    def witnessed(self, event: str, detail: str | float, before: str | None, hung_up: bool) -> None:
        """One event of a call (key_witness), `before` being what the call knew of that key:
        a key is counted once however many times it is reported (every reporter says CREATED
        before DELETED or LEFT)."""
        if event == key_witness.CREATED and before is None:
            self.created.inc()
        elif event == key_witness.DELETED and before != key_witness.DELETED:
            (self.hung_up if hung_up else self.undeliverable).inc()
        elif event == key_witness.LEFT and before != key_witness.LEFT:
            self.left.inc()
        elif event == key_witness.WAITED_FOR_USER:
            self.user_waits.observe(float(detail))
        elif event == key_witness.WAITED_UNTIL_USABLE:
            self.usable_waits.observe(float(detail))

    def answered(self, rpc: str, error_code: Any) -> None:
        self.calls.labels(rpc=rpc, error_code=str(error_code)).inc()


class Exporter:
    """GET /metrics over HTTP/1.1, one request a connection, on an event loop in one thread."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.waiting: dict[asyncio.StreamWriter, None] = {}  # oldest first

    def start(self, host: str, port: int) -> int:
        """Listen and answer on an event loop of the exporter's own, in a thread of its own
        (whatever loop the caller runs); the port bound, once it is."""
        bound: queue.Queue[int | Exception] = queue.Queue(maxsize=1)

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                self.server = loop.run_until_complete(
                    asyncio.start_server(self._answer, host, port, limit=MAX_REQUEST_BYTES)
                )
            except Exception as error:  # handed to the caller, which says what it was
                loop.close()
                bound.put(error)
                return
            bound.put(int(self.server.sockets[0].getsockname()[1]))
            loop.run_forever()

        threading.Thread(target=run, name="metrics", daemon=True).start()
        outcome = bound.get()
        if isinstance(outcome, OSError):
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise ActionError(
                f"cannot serve metrics on {where}: {_why(outcome)}", Category.INVALID_INPUT
            )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.waiting) >= MAX_WAITING:
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            oldest.transport.abort()
        self.waiting[writer] = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
            self.waiting.pop(writer, None)
            method, path, *_ = [*head.decode("latin-1").split(" ", 2), "", ""]
            if method not in ("GET", "HEAD"):
                status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
            elif path.split("?")[0] not in ("/", "/metrics"):
                status, body, kind = "404 Not Found", b"GET /metrics\n", "text/plain"
            else:
                status, body, kind = "200 OK", generate_latest(self.registry), CONTENT_TYPE_LATEST
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
                + (body if method == "GET" else b"")
            )
            await asyncio.wait_for(writer.drain(), IDLE_SECONDS)
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), IDLE_SECONDS)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
            writer.transport.abort()  # too slow, too large or cut short: nothing more to say
        finally:
            self.waiting.pop(writer, None)


def _why(error: OSError) -> str:
    """The cause of a bind's failure, in words an operator acts on."""
    if isinstance(error, socket.gaierror):
        return "the host is neither an address nor a name that resolves"
    return {
        errno.EADDRINUSE: "the port is in use",
        errno.EACCES: "permission denied (a port below 1024 needs privileges)",
        errno.EADDRNOTAVAIL: "the host is not an address of this machine",
    }.get(error.errno or 0, error.strerror or str(error))
