"""How `serve` listens and whom it lets in: loopback, a 0600 Unix socket, TLS, mutual TLS with
a name allowlist, or plaintext on a network the operator declares closed.

Decided once, at start: whether the listener authenticates its callers. A server that would
lend its own AWS identity (operator.policy) refuses to start on a listener that does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import socket
import ssl
import stat
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from plugin.aws.clients import is_loopback
from plugin.contract.errors import ActionError, Category
from plugin.hosts.operator.settings import ServeSettings

from .reads import READ_SECONDS, ReadGate

SOCKET_MODE = 0o600


@dataclasses.dataclass(frozen=True)
class Listening:
    """Where the server listens, how, and whether every caller is authenticated."""

    address: str  # as grpc binds it: host:port, [v6]:port or unix:path
    credentials: Any  # grpc server credentials, or None in plaintext
    mode: str  # said on the ready line
    authenticated: bool
    warning: str | None = None  # one line, said at start
    flag: str = "--unix"  # the flag a Unix socket's path came from, as its errors name it


def plan(settings: ServeSettings) -> Listening:
    """The listener the settings describe (where, and with what TLS); ActionError (exit 2) for a
    combination that is unsafe or contradicts itself."""
    host, port, unix = settings.host, settings.port, settings.unix
    tls_cert, tls_key, tls_client_ca = settings.tls_cert, settings.tls_key, settings.tls_client_ca
    tls_client_names, insecure_plaintext = settings.tls_client_name, settings.insecure_plaintext
    tls_flags = tls_cert is not None or tls_key is not None or tls_client_ca is not None
    if unix is not None:
        if tls_flags or tls_client_names or insecure_plaintext:
            raise _refused("--unix listens on a local socket: TLS and plaintext flags do not apply")
        return Listening(f"unix:{unix}", None, f"unix socket {unix}, mode 0600", True)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    loopback = is_loopback(host.strip("[]"))
    if tls_client_names and tls_client_ca is None:
        raise _refused("--tls-client-name needs --tls-client-ca (mutual TLS)")
    client_names(tls_client_names)  # each entry says what it matches, or start is refused
    if tls_client_ca is not None and not tls_client_names:
        raise _refused(
            "--tls-client-ca needs --tls-client-name: the names (dns:NAME or uri:URI) of the "
            "client certificates it lets in; any certificate from the CA would do otherwise"
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
    _check_pem(tls_cert, tls_key, tls_client_ca)
    credentials = grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
    mode = "mutual TLS" if client_ca else "TLS"
    return Listening(address, credentials, mode, authenticated=loopback or client_ca is not None)


def _check_pem(cert: Path, key: Path, client_ca: Path | None) -> None:
    """What grpc would only find at the first handshake (or say as a C-core line): a
    certificate and key that are not PEM, or not a pair; a client CA that is no certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as error:
        raise _refused(
            f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate and its private "
            f"key{_why(error)}"
        ) from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (ssl.SSLError, ValueError) as error:
            raise _refused(
                f"--tls-client-ca {client_ca} is not a PEM certificate{_why(error)}"
            ) from None


def _why(error: Exception) -> str:
    """OpenSSL's reason, when it gives a readable one (KEY_VALUES_MISMATCH, say)."""
    reason = getattr(error, "reason", None)
    return f" ({reason})" if isinstance(reason, str) and reason != "PEM_LIB" else ""


def _refused(message: str) -> ActionError:
    return ActionError(message, Category.INVALID_INPUT)


def bind(server: Any, listening: Listening) -> int:
    """Open the listener; the port bound (1 for a Unix socket). ActionError (exit 2), one line
    naming the cause, if it cannot be: found before grpc tries, since grpc says only a C-core
    line and "failed to bind" whatever the reason."""
    if listening.address.startswith("unix:"):
        path = Path(listening.address[len("unix:") :])
        _check_socket_folder(path, listening.flag)
        with _private_socket(path, listening.flag):
            port = _add_port(server, listening)
    else:
        host, _, port_text = listening.address.rpartition(":")
        _check_address(host.strip("[]"), int(port_text))
        port = _add_port(server, listening)
    if port == 0:
        raise ActionError(
            f"cannot listen on {listening.address} (grpc refused to bind it)",
            Category.INVALID_INPUT,
        )
    return port


def _add_port(server: Any, listening: Listening) -> int:
    try:
        if listening.credentials is None:
            return int(server.add_insecure_port(listening.address))
        return int(server.add_secure_port(listening.address, listening.credentials))
    except RuntimeError:
        return 0


def _check_socket_folder(path: Path, flag: str) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise ActionError(
            f"{flag} {path}: the folder {folder} does not exist", Category.INVALID_INPUT
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ActionError(
            f"{flag} {path}: cannot create a socket in {folder} (no write permission there, "
            "or a read-only file system)",
            Category.INVALID_INPUT,
        )


def _check_address(host: str, port: int) -> None:
    """Bind a plain socket where grpc will (then close it): the operating system's reason."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ActionError(
            f"--host {host} is neither an address nor a name this machine resolves",
            Category.INVALID_INPUT,
        ) from None
    for family, kind, protocol, _, address in found:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                raise ActionError(
                    _bind_refusal(host, port, error), Category.INVALID_INPUT
                ) from None


def _bind_refusal(host: str, port: int, error: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the port is in use (another process listens on it)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"cannot listen on {where}: permission denied (a port below 1024 needs privilege)"
    return f"cannot listen on {where}: {error.strerror}"


@contextlib.contextmanager
def _private_socket(path: Path, flag: str) -> Iterator[None]:
    """The socket file is made 0600 as it is made (umask), then checked: no moment at which
    another local user could connect."""
    if path.exists() or path.is_symlink():
        raise ActionError(
            f"{flag} {path} already exists; remove it first (it is never replaced)",
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
            raise ActionError(f"{flag} {path}: cannot make it mode 0600", Category.REJECTED)


# What --tls-client-name entries say they match: a DNS subject alternative name, or a URI one.
DNS, URI = "dns", "uri"
# The auth-context property grpc fills with each kind of SAN of the peer's certificate.
_PEER_PROPERTY = {DNS: "peer_dns", URI: "peer_uri"}
# A stream must send its one request message within this, or it is ended: a caller that opens
# streams and never sends holds nothing for long (grpc.aio waits for it without a thread).
FIRST_MESSAGE_SECONDS = 10.0
UNREADABLE = "the request message cannot be read as this method's"


def client_names(entries: Sequence[str]) -> dict[str, frozenset[bytes]]:
    """--tls-client-name entries by kind: `dns:NAME`, `uri:URI`, or a bare NAME, which is a DNS
    name. A bare entry that looks like a URI (it has "://") is refused: said plainly, it could
    mean either, and a DNS entry must never admit a URI SAN (nor the reverse)."""
    names: dict[str, set[bytes]] = {DNS: set(), URI: set()}
    for entry in entries:
        kind, colon, value = entry.partition(":")
        if colon and kind.lower() in names:
            kind = kind.lower()
        elif "://" in entry or ":" in entry:
            raise _refused(
                f"--tls-client-name {entry}: say what it matches, dns:NAME or uri:URI (a bare "
                "name is a DNS name)"
            )
        else:
            kind, value = DNS, entry
        if not value or (kind == URI and "://" not in value) or (kind == DNS and ":" in value):
            raise _refused(f"--tls-client-name {entry}: not a {kind.upper()} name")
        names[kind].add(_COMPARABLE[kind](value.encode()))
    return {kind: frozenset(values) for kind, values in names.items()}


def _dns_comparable(name: bytes) -> bytes:
    """A DNS name as it is compared: case-insensitively in ASCII (RFC 6125 6.4.1; an
    internationalized name is compared in its A-label form, which is ASCII)."""
    return name.lower()


def _uri_comparable(uri: bytes) -> bytes:
    """A URI as it is compared: exactly, but for the case of its scheme and host (RFC 3986
    6.2.2.1: they are case-insensitive; its path, query and userinfo are not, and a SPIFFE ID's
    path names a workload). No other normalization (percent-encoding, dot segments): a
    certificate's URI that differs there is refused, never admitted."""
    scheme, separator, rest = uri.partition(b"://")
    if not separator:
        return uri
    authority, slash, tail = rest.partition(b"/")
    userinfo, at, host = authority.rpartition(b"@")
    return scheme.lower() + separator + userinfo + at + host.lower() + slash + tail


_COMPARABLE = {DNS: _dns_comparable, URI: _uri_comparable}


class Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every method, health included: under mutual TLS, a certificate naming no allowed client
    is refused UNAUTHENTICATED before anything else (before its request is read); and a stream
    that does not send its request within FIRST_MESSAGE_SECONDS is ended. grpc.aio would
    otherwise wait for a unary request without end (without a thread, but not without memory)."""

    def __init__(self, names: dict[str, frozenset[bytes]] | None) -> None:
        self._names = names

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or (handler.request_streaming and self._names is None):
            return handler  # ExecuteAction and TestCredentials read their request themselves
        behaviour = (
            handler.stream_stream
            or handler.stream_unary
            or handler.unary_stream
            or handler.unary_unary
        )
        reads_itself = handler.request_streaming
        admit = self._admit

        async def guarded(requests: Any, context: Any) -> Any:
            await admit(context)
            if reads_itself:
                return await behaviour(requests, context)
            message = await first_message(context)
            return await behaviour(message, context)

        make = (
            grpc.stream_stream_rpc_method_handler
            if handler.response_streaming
            else grpc.stream_unary_rpc_method_handler
        )
        return make(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _admit(self, context: Any) -> None:
        if self._names is None:
            return
        auth = context.auth_context()
        for kind, allowed in self._names.items():
            comparable = _COMPARABLE[kind]
            if any(comparable(name) in allowed for name in auth.get(_PEER_PROPERTY[kind], ())):
                return
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "the client certificate names no client this server lets in (--tls-client-name)",
        )


async def first_message(context: Any, gate: ReadGate | None = None) -> Any:
    """The stream's one request message, read within FIRST_MESSAGE_SECONDS (else the call is
    ended: DEADLINE_EXCEEDED, or INVALID_ARGUMENT for a stream closed without one); with a
    `gate`, read only with its permit (waited for within that time), and within READ_SECONDS
    of getting it.

    A timer that cancels the read, not asyncio.wait_for: that makes a task per call (a tenth
    of serve's own share of an ExecuteAction, measured), and asyncio.timeout is Python 3.11."""
    task = asyncio.current_task()
    assert task is not None
    expired: list[str] = []

    def expire(why: str) -> None:
        expired.append(why)
        task.cancel()

    loop = asyncio.get_running_loop()
    ends = loop.time() + FIRST_MESSAGE_SECONDS
    late = f"no request message within {FIRST_MESSAGE_SECONDS:g} s of the call's start"
    timer = loop.call_at(ends, expire, late)
    holder: str | None = None  # the connection whose permit this read holds
    granted = 0.0
    try:
        if gate is not None:
            connection = context.peer()
            await gate.take(connection)
            holder = connection
            granted = loop.time()
            if ends - loop.time() > READ_SECONDS:  # a permit is held this long at most
                timer.cancel()
                slow = f"the request message did not arrive within {READ_SECONDS:g} s of its read"
                timer = loop.call_later(READ_SECONDS, expire, slow)
        message = await context.read()
        if gate is not None and holder is not None:
            gate.read_took(holder, loop.time() - granted)  # quick trusts, slow marks
    except asyncio.CancelledError:
        if not expired:
            raise  # the caller went
        if gate is not None and holder is not None:
            gate.struck(holder)  # it held a permit in vain: its connection goes last
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, expired[0])
    except DecodeError:  # invalid UTF-8 in a string field, say: the message cannot be read
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNREADABLE)
    finally:
        timer.cancel()
        if gate is not None and holder is not None:
            gate.give_back(holder)
    if message is grpc.aio.EOF:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call sent no request message")
    return message
