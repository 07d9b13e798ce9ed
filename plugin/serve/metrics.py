"""What an operator sees of `serve` without reading a payload: Prometheus metrics, served on
their own port (`--metrics-port`) by the standard client library. No label carries a user
name, a key id or anything a caller chose: only the RPC's name and the error code."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .. import key_witness

PREFIX = "iam_create_access_key"
_WAIT_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, float("inf"))


class Metrics:
    """The server's counters, gauges and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
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
        self.in_flight = Gauge(
            f"{PREFIX}_calls_in_flight",
            "ExecuteAction/TestCredentials calls under way",
            registry=registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_execute_action_seconds", "How long ExecuteAction took", registry=registry
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
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.usable_waits = Histogram(
            f"{PREFIX}_wait_until_usable_seconds",
            "Waits until STS accepted a new key",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port (a thread of its own); the port bound."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)

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
