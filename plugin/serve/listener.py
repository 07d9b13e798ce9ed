"""How `serve` listens and whom it lets in: loopback, a 0600 Unix socket, TLS, mutual TLS with
a name allowlist, or plaintext on a network the operator declares closed.

Decided once, at start: whether the listener authenticates its callers. A server that would
lend its own AWS identity (serve_policy) refuses to start on a listener that does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

from ..clients import is_loopback
from ..errors import ActionError, Category

SOCKET_MODE = 0o600


@dataclasses.dataclass(frozen=True)
class Listening:
    """Where the server listens, how, and whether every caller is authenticated."""

    address: str  # as grpc binds it: host:port, [v6]:port or unix:path
    credentials: Any  # grpc server credentials, or None in plaintext
    mode: str  # said on the ready line
    authenticated: bool
    warning: str | None = None  # one line, said at start


def plan(
    *,
    host: str,
    port: int,
    unix: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    tls_client_names: tuple[str, ...],
    insecure_plaintext: bool,
) -> Listening:
    """The listener the flags describe; ActionError (exit 2) for a combination that is unsafe
    or contradicts itself."""
    tls_flags = tls_cert is not None or tls_key is not None or tls_client_ca is not None
    if unix is not None:
        if tls_flags or tls_client_names or insecure_plaintext:
            raise _refused("--unix listens on a local socket: TLS and plaintext flags do not apply")
        return Listening(f"unix:{unix}", None, f"unix socket {unix}, mode 0600", True)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    loopback = is_loopback(host.strip("[]"))
    if tls_client_names and tls_client_ca is None:
        raise _refused("--tls-client-name needs --tls-client-ca (mutual TLS)")
    if tls_client_ca is not None and not tls_client_names:
        raise _refused(
            "--tls-client-ca needs --tls-client-name: the names (DNS or URI) of the client "
            "certificates it lets in; any certificate from the CA would do otherwise"
        )
    if not tls_flags:
        if loopback:
            return Listening(address, None, "plaintext, loopback only", True)
        if not insecure_plaintext:
            raise _refused(
                f"serving on {host} needs TLS (--tls-cert and --tls-key), or --insecure-plaintext "
                "for a network closed to all but the runner: the answers carry new secret keys"
            )
        return Listening(
            address,
            None,
            "plaintext, on a network declared closed",
            True,
            warning=(
                f"--insecure-plaintext: serving on {address} in plaintext; whoever reaches this "
                "port can call the action and reads new secret keys as they cross the network: "
                "close it to all but the runner (deploy/kubernetes: a NetworkPolicy)"
            ),
        )
    if insecure_plaintext:
        raise _refused("--insecure-plaintext contradicts --tls-cert/--tls-key")
    if tls_cert is None or tls_key is None:
        raise _refused("--tls-cert and --tls-key go together")
    try:
        pair = (tls_key.read_bytes(), tls_cert.read_bytes())
        client_ca = tls_client_ca.read_bytes() if tls_client_ca else None
    except OSError as error:
        raise _refused(f"cannot read a TLS file: {error.strerror} ({error.filename})") from None
    credentials = grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
    mode = "mutual TLS" if client_ca else "TLS"
    return Listening(address, credentials, mode, authenticated=loopback or client_ca is not None)


def _refused(message: str) -> ActionError:
    return ActionError(message, Category.INVALID_INPUT)


def bind(server: Any, listening: Listening) -> int:
    """Open the listener; the port bound (1 for a Unix socket). ActionError if it cannot be."""
    try:
        if listening.address.startswith("unix:"):
            with _private_socket(Path(listening.address[len("unix:") :])):
                port = server.add_insecure_port(listening.address)
        elif listening.credentials is None:
            port = server.add_insecure_port(listening.address)
        else:
            port = server.add_secure_port(listening.address, listening.credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ActionError(
            f"cannot listen on {listening.address} (in use, or not an address of this machine)",
            Category.REJECTED,
        )
    return int(port)


@contextlib.contextmanager
def _private_socket(path: Path) -> Iterator[None]:
    """The socket file is made 0600 as it is made (umask), then checked: no moment at which
    another local user could connect."""
    if path.exists() or path.is_symlink():
        raise ActionError(
            f"--unix {path} already exists; remove it first (it is never replaced)",
            Category.INVALID_INPUT,
        )
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)
    if path.exists():
        os.chmod(path, SOCKET_MODE)
        if stat.S_IMODE(path.stat().st_mode) != SOCKET_MODE:
            raise ActionError(f"--unix {path}: cannot make it mode 0600", Category.REJECTED)


class ClientNames(grpc.ServerInterceptor):  # type: ignore[misc]
    """Mutual TLS: every call's client certificate must name (DNS or URI SAN) an allowed client;
    a certificate from the same CA for another workload is refused."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = frozenset(name.encode() for name in names)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        for kind in ("unary_unary", "unary_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return handler._replace(**{kind: self._checked(behaviour)})
        return handler

    def _checked(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def checked(request: Any, context: Any, **more: Any) -> Any:
            auth = context.auth_context()
            presented = set(auth.get("peer_dns", [])) | set(auth.get("peer_uri", []))
            if not presented & self._names:
                context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "the client certificate names no client this server lets in "
                    "(--tls-client-name)",
                )
            return behaviour(request, context, **more)

        # grpc reads these off the behaviour: the health service's Watch holds no thread.
        for name in ("experimental_non_blocking", "experimental_thread_pool"):
            if hasattr(behaviour, name):
                setattr(checked, name, getattr(behaviour, name))
        return checked
