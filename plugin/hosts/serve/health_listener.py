"""`--health-port`: grpc.health.v1 alone, in plaintext, on a listener of its own, outside the
main port's connection cap: the kubelet's probe and the image's HEALTHCHECK are answered
whatever callers hold on the main port (idle, stalled, or under mutual TLS bare sockets that
never handshake: 33 of them made a new connection's health UNAVAILABLE there).

Plaintext because the kubelet's gRPC probe speaks no TLS: "Built-in probes do not support any
authentication parameters (like -tls)" (kubernetes.io, Configure Liveness, Readiness and Startup
Probes, "Define a gRPC liveness probe"; pkg/probe/grpc/grpc.go dials with insecure credentials).
It answers only grpc.health.v1 (whether the server is SERVING), which carries no secret and
lends nothing; Describe stays on the main port, where the runner asks for it.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from . import listener

# Its own small bounds: a probe opens a connection, asks once and closes it. Whatever holds
# more (only the node reaches this port in the Deployment: the NetworkPolicy admits no pod to
# it) is closed within CONNECTION_AGE_MS, stalled or not.
CONNECTIONS = 16
STREAMS_PER_CONNECTION = 4
MESSAGE_BYTES = 1024  # a HealthCheckRequest is a service name
IDLE_MS = 10 * 1000
CONNECTION_AGE_MS, CONNECTION_AGE_GRACE_MS = 30 * 1000, 5 * 1000
HANDSHAKE_MS = 5 * 1000


def address(host: str, port: int) -> str:
    """host:port as grpc binds it ([v6]:port for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start(health: Any, host: str, port: int) -> tuple[Any, int]:
    """A server answering `health` (the main server's own HealthServicer, so readiness turns
    NOT_SERVING at SIGTERM on both at once) on host:port; it and the port bound. ActionError
    (exit 2, one line) if it cannot listen there."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.max_concurrent_streams", STREAMS_PER_CONNECTION),
            ("grpc.max_allowed_incoming_connections", CONNECTIONS),
            ("grpc.max_connection_idle_ms", IDLE_MS),
            ("grpc.max_connection_age_ms", CONNECTION_AGE_MS),
            ("grpc.max_connection_age_grace_ms", CONNECTION_AGE_GRACE_MS),
            ("grpc.server_handshake_timeout_ms", HANDSHAKE_MS),
        ]
    )
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    listening = listener.Listening(address(host, port), None, "plaintext, health only", True)
    bound = listener.bind(server, listening)
    await server.start()
    return server, bound
