"""Close a caller's TCP connection by its grpc peer string, from under grpc.

An answer a caller never reads stays in grpc's send queue until its connection closes: the
status that would end the stream queues behind it, grpc.aio has no call to reset a stream, and
a client that answers pings keeps its connection alive. The fifth red team held 75 answers of
2.7 MB that way from one address (510 MiB, climbing). grpc's Python server exposes no
connection object, so the server finds the connection's socket among its own file descriptors
(the one whose peer is that address and port, on the port the server listens on) and shuts it
down: grpc then sees the connection end, and frees every stream on it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from urllib.parse import unquote


def peer_address(peer: str) -> tuple[str, int] | None:
    """(host, port) of a grpc peer string: "ipv4:10.0.0.7:51234", "ipv6:[::1]:51234" (its
    brackets may come percent-encoded); None for a peer that names no TCP address (unix:)."""
    kind, _, rest = unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def cut(peer: str, local_port: int) -> bool:
    """Shut down this process's TCP connection from `peer` to `local_port`; whether one was
    found. Only sockets whose local port is `local_port` are looked at: the server's own
    outbound connections (to AWS) are never touched."""
    address = peer_address(peer)
    if address is None:
        return False
    found = False
    for name in os.listdir("/proc/self/fd"):
        # a descriptor closed meanwhile, or a socket that is no TCP connection (unix, UDP)
        with contextlib.suppress(OSError, ValueError, TypeError, IndexError):
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            # a duplicate, its family read from the socket itself; closing it leaves grpc's
            with socket.socket(fileno=os.dup(int(name))) as duplicate:
                if duplicate.type != socket.SOCK_STREAM or duplicate.family not in (
                    socket.AF_INET,
                    socket.AF_INET6,
                ):
                    continue
                if duplicate.getsockname()[1] != local_port:
                    continue
                far = duplicate.getpeername()
                if (_plain(far[0]), far[1]) == (_plain(address[0]), address[1]):
                    duplicate.shutdown(socket.SHUT_RDWR)  # the connection, for every holder
                    found = True
    return found


def _plain(host: str) -> str:
    """An IPv4 address as itself, whether written plain or IPv4-mapped (::ffff:10.0.0.7): a
    dual-stack listener sees IPv4 callers as mapped addresses."""
    return host.removeprefix("::ffff:")
