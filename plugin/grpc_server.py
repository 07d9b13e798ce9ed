"""`serve`: the action as a long-lived plugin that Blink's runner calls over gRPC.

A thin adapter: the servicer hands each message to grpc_translation and the engine functions,
and adds only what a server must: the step's own log (log_buffer), the call's deadline, a caller
that hung up, TLS, the health services and a graceful stop. grpc is imported only here, so the
`run` path never pays for it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import dataclasses
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import engine, grpc_translation, redaction
from .clients import is_loopback
from .errors import ActionError, Category
from .protocol import integration_pack_pb2 as pb
from .protocol import integration_pack_pb2_grpc as pb_grpc
from .request import MAX_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

SERVICE = "integration_pack.Plugin"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337
DEFAULT_GRACE_SECONDS = 60.0
MAX_MESSAGE_BYTES = 5 * 1024 * 1024  # as the Blink plugin SDK's server
MAX_LOG_BYTES = 64 * 1024
WORKERS = 64
# Kept back from a call's deadline, to answer (or to delete a key nobody could receive).
ANSWER_MARGIN = 0.5


@dataclasses.dataclass(frozen=True)
class Options:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    grace: float = DEFAULT_GRACE_SECONDS


class StepLog(logging.Handler):
    """The records one ExecuteAction writes (in its thread, or in the workers that make its AWS
    calls under a deadline: they run in its context), for log_buffer, redacted.

    Secrets guarded by value are masked as each record arrives (while the invocation still
    guards them); secret-named fields once, over the whole text (the regular expressions cost
    more than the rest of a record's handling).
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.started = time.time()
        self.lines: list[str] = []
        self.size = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return _CURRENT_STEP.get(None) is self

    def emit(self, record: logging.LogRecord) -> None:
        message = redaction.redactor().redact_values(record.getMessage())
        self._add(f"+{(record.created - self.started) * 1000:.0f}ms {record.levelname} {message}")

    def note(self, line: str) -> None:
        """A line of the server's own about this step (no log record: they cost more)."""
        self._add(f"+{(time.time() - self.started) * 1000:.0f}ms INFO {line}")

    def _add(self, line: str) -> None:
        size = len(line.encode("utf-8")) + 1
        if self.size + size > MAX_LOG_BYTES:
            return  # a step's log is bounded; the first lines say the most
        self.lines.append(line)
        self.size += size

    def text(self) -> bytes:
        text = redaction.redactor().redact_fields("\n".join(self.lines))
        return text.encode("utf-8")[:MAX_LOG_BYTES]


@contextlib.contextmanager
def step_log() -> Iterator[StepLog]:
    """Collect the plugin's own log records (not botocore's wire log) of this invocation."""
    handler = StepLog()
    token = _CURRENT_STEP.set(handler)
    logger = logging.getLogger("plugin")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        _CURRENT_STEP.reset(token)


_CURRENT_STEP: contextvars.ContextVar[StepLog] = contextvars.ContextVar("step_log")


class PluginServicer(pb_grpc.PluginServicer):  # type: ignore[misc]
    """integration_pack.Plugin: messages in, the engine's request out, its answer back."""

    def __init__(self) -> None:
        self.last_use = 0

    def HealthProbe(self, request: Any, context: Any) -> Any:
        return pb.HealthStatus(last_use=self.last_use)

    def Describe(self, request: Any, context: Any) -> Any:
        return grpc_translation.plugin_description(pb)

    def GetActions(self, request: Any, context: Any) -> Any:
        return pb.ActionList(actions=[grpc_translation.action_message(pb)])

    def TestCredentials(self, request: Any, context: Any) -> Any:
        try:
            engine_request = grpc_translation.credentials_request(
                request, _time_for_the_call(0, context)
            )
        except ActionError as error:
            return grpc_translation.credentials_response(pb, engine.failure(error))
        return grpc_translation.credentials_response(pb, engine.test_connection(engine_request))

    def ExecuteAction(self, request: Any, context: Any) -> Any:
        self.last_use = int(time.time())
        started = time.monotonic()
        with step_log() as step:
            step.note(
                f"ExecuteAction {grpc_translation.shown(request.name)} at "
                + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            )
            try:
                engine_request = grpc_translation.engine_request(
                    request, _time_for_the_call(request.timeout, context)
                )
            except ActionError as error:
                response = engine.failure(error)
            else:
                response = engine.execute(engine_request)
                if not context.is_active():
                    _withdraw(engine_request, response)
            step.note(
                f"finished in {(time.monotonic() - started) * 1000:.0f} ms: error code "
                f"{response['error_code']}"
                + (f" ({response['error_message']})" if response["error_code"] else "")
            )
        return grpc_translation.execute_response(pb, response, request.context, step.text())


def _time_for_the_call(timeout: int, context: Any) -> float | None:
    """The invocation's time: the earlier of the message's timeout and the call's deadline (less
    a margin to answer). Above a second it is cut to whole seconds, so that calls with nearly
    the same deadline share the clients a warm worker keeps (they are sized by the budget)."""
    limits = [float(timeout)] if timeout > 0 else []
    remaining = context.time_remaining()
    if remaining is not None and remaining < MAX_TIMEOUT_SECONDS:  # else: no deadline to keep
        limits.append(remaining - ANSWER_MARGIN)
    if not limits:
        return None
    budget = min(*limits, MAX_TIMEOUT_SECONDS)  # a runner's longer timeout: the action's longest
    return float(math.floor(budget)) if budget >= 1 else max(0.1, budget)


def _withdraw(engine_request: dict[str, Any], response: dict[str, Any]) -> None:
    """The caller hung up (cancelled, disconnected or out of time): its key must not outlive it."""
    try:
        withdrawn = engine.withdraw(engine_request, response)
    except ActionError as error:
        log.error("the caller hung up and its key could not be deleted: %s", error)
    except Exception as error:  # a bug; the key id is in the step's own log above
        log.error("the caller hung up and deleting its key failed (%s)", type(error).__name__)
    else:
        if withdrawn:
            log.warning("the caller hung up before the answer: deleted key %s", withdrawn)
    response.update(
        engine.failure(
            ActionError("the caller hung up before the answer could be sent", Category.TRANSIENT)
        )
    )


def serve(options: Options) -> int:
    """Serve until SIGTERM or SIGINT; then finish the calls in flight (within the grace)."""
    credentials = _credentials(options)
    _log_warnings_redacted()
    logging.getLogger("plugin").setLevel(logging.INFO)  # for log_buffer, not the server's log
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="plugin"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # grpc shares a port with another process by default (SO_REUSEPORT): a second
            # server on a busy port would take half the runner's calls. Refuse to start instead.
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_PluginServicer_to_server(PluginServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = (
        f"[{options.host}]:{options.port}"
        if ":" in options.host
        else f"{options.host}:{options.port}"
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ActionError(
            f"cannot listen on {address} (in use, or not an address of this machine)",
            Category.REJECTED,
        )
    server.start()
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    mode = "plaintext, loopback only" if credentials is None else _tls_mode(options)
    print(
        f"iam-create-access-key: serving {SERVICE} on {options.host}:{port} ({mode})",
        file=sys.stderr,
        flush=True,
    )
    while not stopping.wait(3600):
        pass
    health_servicer.enter_graceful_shutdown()
    print(
        "iam-create-access-key: stopping; finishing the calls in flight "
        f"(at most {options.grace:g} s)",
        file=sys.stderr,
        flush=True,
    )
    server.stop(options.grace).wait()
    return 0


def _log_warnings_redacted() -> None:
    """The server's own log: warnings (a key deleted for a caller that hung up, ...) on stderr,
    through the redactor; never a payload. --debug adds everything, still redacted."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
    redaction.install(logging.getLogger("botocore"), logging.getLogger("urllib3"))


def _credentials(options: Options) -> Any:
    """TLS credentials, or None for loopback in clear; refuse clear text anywhere else."""
    if options.tls_cert is None and options.tls_key is None:
        if options.tls_client_ca is not None:
            raise ActionError(
                "--tls-client-ca needs --tls-cert and --tls-key", Category.INVALID_INPUT
            )
        if not is_loopback(options.host.strip("[]")):
            raise ActionError(
                f"serving on {options.host} needs TLS (--tls-cert and --tls-key): the answers "
                "carry new secret keys, which never cross a network in clear",
                Category.INVALID_INPUT,
            )
        return None
    if options.tls_cert is None or options.tls_key is None:
        raise ActionError("--tls-cert and --tls-key go together", Category.INVALID_INPUT)
    try:
        pair = (options.tls_key.read_bytes(), options.tls_cert.read_bytes())
        client_ca = options.tls_client_ca.read_bytes() if options.tls_client_ca else None
    except OSError as error:
        raise ActionError(
            f"cannot read a TLS file: {error.strerror} ({error.filename})", Category.INVALID_INPUT
        ) from None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _tls_mode(options: Options) -> str:
    return "mutual TLS" if options.tls_client_ca else "TLS"
