"""`--health-port`: grpc.health.v1 alone, in plaintext, on a listener of its own, outside the
main port's connection cap: the kubelet's probe and the image's HEALTHCHECK are answered
whatever callers hold on the main port (idle, stalled, or under mutual TLS bare sockets that
never handshake: 33 of them made a new connection's health UNAVAILABLE there).

Plaintext because the kubelet's gRPC probe speaks no TLS: "Built-in probes do not support any
authentication parameters (like -tls)" (kubernetes.io, Configure Liveness, Readiness and Startup
Probes, "Define a gRPC liveness probe"; pkg/probe/grpc/grpc.go dials with insecure credentials).
It answers only grpc.health.v1 (whether the server is SERVING), which carries no secret and
lends nothing; Describe stays on the main port, where the runner asks for it.

`--health-socket`: the same service on a Unix socket (mode 0600), which no network caller can
reach, so none can fill it: a port, however high its connection cap, is refused to a new probe
while an attacker who reaches it holds that many connections (the red team's health_starve.py:
16 idle sockets, reopened as they were closed, failed every probe). The exec probe
`iam-create-access-key health --health-socket PATH` asks it from inside the container.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from . import listener

# Its own small bounds: a probe opens a connection, asks once and closes it. Whatever holds
# more is closed within CONNECTION_AGE_MS, stalled or not; but whoever reaches the port can
# reopen them at once, and holding CONNECTIONS of them refuses every new probe (gRPC's
# connection quota refuses what passes it): the health socket is the hardened choice. The cap
# is what the process can afford, so that an attacker needs that many sockets: an idle
# HTTP/2 connection costs the server ~18 KiB and one open file (53 MiB and 14 files idle; 58
# MiB and 270 files with 256 held, 63 MiB and 526 with 512; `python -m
# tests.measure_health`), and 256 leaves most of a 1024-file soft limit to the
# calls' own sockets (--max-calls) and the main port's 32 connections.
CONNECTIONS = 256
STREAMS_PER_CONNECTION = 4
MESSAGE_BYTES = 1024  # a HealthCheckRequest is a service name
# A request's window, fixed (BDP probing would grow it to megabytes, and a stream that never
# finishes its message was buffered that far: 256 connections x 4 streams of 5 MB messages
# took the server to 411 MiB; now 84 MiB, measured below): a HealthCheckRequest fits it.
STREAM_WINDOW_BYTES = 4 * MESSAGE_BYTES
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
    listening = listener.Listening(address(host, port), None, "plaintext, health only", True)
    return await _start(health, listening)


async def start_socket(health: Any, path: Path) -> Any:
    """The same, on a Unix socket made mode 0600 as it is made; a socket a killed server left
    there (nobody listens on it: the emptyDir that holds it outlives the container) is
    replaced, anything else at that path is refused (exit 2, one line)."""
    _remove_if_stale(path)
    listening = listener.Listening(
        f"unix:{path}", None, "health only", True, flag="--health-socket"
    )
    server, _ = await _start(health, listening)
    return server


async def _start(health: Any, listening: listener.Listening) -> tuple[Any, int]:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.max_concurrent_streams", STREAMS_PER_CONNECTION),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
            ("grpc.max_allowed_incoming_connections", CONNECTIONS),
            ("grpc.max_connection_idle_ms", IDLE_MS),
            ("grpc.max_connection_age_ms", CONNECTION_AGE_MS),
            ("grpc.max_connection_age_grace_ms", CONNECTION_AGE_GRACE_MS),
            ("grpc.server_handshake_timeout_ms", HANDSHAKE_MS),
        ]
    )
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = listener.bind(server, listening)
    await server.start()
    return server, bound


def _remove_if_stale(path: Path) -> None:
    """Unlink `path` if it is a socket nobody listens on (a server killed by SIGKILL or the
    OOM killer could not remove it); a live one is left, and bind refuses it."""
    with contextlib.suppress(OSError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError as error:
                if error.errno == errno.ECONNREFUSED:
                    path.unlink()
