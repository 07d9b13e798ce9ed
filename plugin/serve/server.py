"""`serve`: the action as a long-lived plugin that Blink's runner calls over gRPC.

A thin adapter: the servicer hands each message to `translation` and the engine functions,
and adds only what a server must: the step's own log (log_buffer), the call's deadline, a caller
that hung up, who may call and what they may ask (`listener`, `policy`), how many calls at once
(`calls`), what the operator sees (`metrics`, `logs`), the health services and a stop that ends
within its grace. grpc is imported only in this package, so the `run` path never pays for it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import dataclasses
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .. import engine, key_witness, redaction
from ..context import bound
from ..deadline import caller_gone_when, leased
from ..errors import ActionError, Category
from ..request import MAX_TIMEOUT_SECONDS
from . import listener, logs, translation
from .calls import Flight, Flights, Slots, unfinished_report
from .defaults import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_HOST,
    DEFAULT_MAX_CALL_SECONDS,
    DEFAULT_MAX_CALLS,
    DEFAULT_PORT,
)
from .metrics import Metrics
from .policy import Policy
from .protocol import integration_pack_pb2 as pb
from .protocol import integration_pack_pb2_grpc as pb_grpc
from .translation import (
    MAX_ANSWER_BYTES,
    MAX_CONTEXT_BYTES,
    MAX_LOG_BYTES,
    MAX_MESSAGE_BYTES,
)

log = logging.getLogger(__name__)

SERVICE = "integration_pack.Plugin"
# Threads beyond the call slots: health, HealthProbe, Describe and GetActions always find one,
# and so does a call that is refused because every slot is taken.
RESERVE_THREADS = 8
# Kept back from a call's deadline, to answer (or to delete a key nobody could receive).
ANSWER_MARGIN = 0.5
# After the grace, what the calls still running get before the process exits regardless, and
# then what listing the keys of those that did not finish may take.
EXIT_MARGIN_SECONDS = 1.5
EXIT_LISTING_SECONDS = 2.5


@dataclasses.dataclass(frozen=True)
class Options:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    unix: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_client_names: tuple[str, ...] = ()
    insecure_plaintext: bool = False
    grace: float = DEFAULT_GRACE_SECONDS
    max_calls: int = DEFAULT_MAX_CALLS
    max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS
    policy: Policy = dataclasses.field(default_factory=Policy)
    log_format: str = logs.TEXT
    metrics_host: str = DEFAULT_HOST
    metrics_port: int | None = None  # no metrics unless given


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
    logger = logging.getLogger("plugin")
    logger.addHandler(handler)
    try:
        with bound(_CURRENT_STEP, handler):
            yield handler
    finally:
        logger.removeHandler(handler)


_CURRENT_STEP: contextvars.ContextVar[StepLog] = contextvars.ContextVar("step_log")


class PluginServicer(pb_grpc.PluginServicer):  # type: ignore[misc]
    """integration_pack.Plugin: messages in, the engine's request out, its answer back."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.slots = Slots(options.max_calls)
        self.flights = Flights()
        self.metrics = Metrics(options.max_call_seconds)  # buckets up to it
        self.metrics.in_flight.set_function(self.flights.count)

    def HealthProbe(self, request: Any, context: Any) -> Any:
        self.metrics.answered("HealthProbe", 0)
        return pb.HealthStatus(last_use=self.flights.last_use())

    def Describe(self, request: Any, context: Any) -> Any:
        self.metrics.answered("Describe", 0)
        return translation.plugin_description(pb)

    def GetActions(self, request: Any, context: Any) -> Any:
        self.metrics.answered("GetActions", 0)
        return pb.ActionList(actions=[translation.action_message(pb)])

    def TestCredentials(self, request: Any, context: Any) -> Any:
        with self._slot(context, "TestCredentials", "testing a connection"):
            try:
                engine_request = translation.credentials_request(
                    request, self._time_for(0, context)
                )
            except ActionError as error:
                response = engine.failure(error)
            else:
                response = engine.test_connection(engine_request, self.options.policy.admit)
            self.metrics.answered("TestCredentials", response["error_code"])
        return translation.credentials_response(pb, response)

    def ExecuteAction(self, request: Any, context: Any) -> Any:
        started = time.monotonic()
        with (
            self._slot(context, "ExecuteAction", "an ExecuteAction not yet read") as flight,
            step_log() as step,
        ):
            step.note(
                f"call {flight.call_id}: ExecuteAction {translation.shown(request.name)} at "
                + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            )
            engine_request: dict[str, Any] | None = None
            try:
                engine_request = translation.engine_request(
                    request, self._time_for(request.timeout, context)
                )
            except ActionError as error:
                response = engine.failure(error)
            else:
                flight.request = engine_request
                flight.subject = _subject(engine_request)
                response = engine.execute(engine_request, self.options.policy.admit)
                if not context.is_active():
                    _withdraw(engine_request, response, flight, HUNG_UP)
            step.note(
                f"finished in {(time.monotonic() - started) * 1000:.0f} ms: error code "
                f"{response['error_code']}"
                + (f" ({response['error_message']})" if response["error_code"] else "")
            )
            # A context too large to carry back is refused (code 2) and not echoed.
            echoed = request.context if len(request.context) <= MAX_CONTEXT_BYTES else b""
            answer = translation.execute_response(pb, response, echoed, step.text())
            if engine_request is not None and answer.ByteSize() > MAX_ANSWER_BYTES:
                # Sized beforehand (context, log, error), so a bug; even then no live key.
                _withdraw(engine_request, response, flight, "the answer was too large to send")
                answer = translation.execute_response(pb, response, b"", step.text())
            self.metrics.answered("ExecuteAction", response["error_code"])  # before the slot
            self.metrics.duration.observe(time.monotonic() - started)  # is free again
        return answer

    @contextlib.contextmanager
    def _slot(self, context: Any, rpc: str, subject: str) -> Iterator[Flight]:
        """A call slot, or RESOURCE_EXHAUSTED at once; the call's id and witness while it runs."""
        lease = self.slots.take()
        if lease is None:
            self.metrics.refused.labels(rpc=rpc).inc()
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"all {self.slots.size} call slots of this plugin are busy; try again shortly",
            )
            raise AssertionError("context.abort returns only by raising")
        flight = self.flights.begin(subject)

        def witness(event: str, detail: str | float) -> None:
            before = flight.witness(event, detail)
            self.metrics.witnessed(event, detail, before, flight.hung_up)

        gone = threading.Event()
        context.add_callback(gone.set)  # the RPC ended: cancelled, hung up, or answered
        try:
            with (
                leased(lease),
                key_witness.witnessed_by(witness),
                caller_gone_when(gone),
                logs.about_call(flight.call_id),
            ):
                yield flight
        finally:
            self.flights.end(flight)

    def _time_for(self, timeout: int, context: Any) -> float:
        return _time_for_the_call(timeout, context, self.options.max_call_seconds)


def _subject(engine_request: dict[str, Any]) -> str:
    """Whom a call creates a key for, as the server's lines name it."""
    user = engine_request["parameters"].get("user_name")
    if isinstance(user, str) and user:
        return f'user "{translation.shown(user)}"'
    return "the signing identity"


def _time_for_the_call(timeout: int, context: Any, cap: float) -> float:
    """The invocation's time: the earliest of the message's timeout, the call's deadline (less
    a margin to answer) and the server's cap. Above a second it is cut to whole seconds, so
    that calls with nearly the same deadline share the clients a warm worker keeps (they are
    sized by the budget)."""
    limits = [cap, float(MAX_TIMEOUT_SECONDS)]
    if timeout > 0:
        limits.append(float(timeout))
    remaining = context.time_remaining()
    if remaining is not None and remaining < MAX_TIMEOUT_SECONDS:  # else: no deadline to keep
        limits.append(remaining - ANSWER_MARGIN)
    budget = min(limits)
    return float(math.floor(budget)) if budget >= 1 else max(0.1, budget)


HUNG_UP = "the caller hung up before the answer could be sent"


def _withdraw(
    engine_request: dict[str, Any], response: dict[str, Any], flight: Flight, why: str
) -> None:
    """The answer cannot reach the caller (it hung up: cancelled, disconnected or out of time):
    its key must not outlive the call."""
    flight.hung_up = True
    try:
        withdrawn = engine.withdraw(engine_request, response)
    except ActionError as error:
        log.error("%s, and its key could not be deleted: %s", why, error)
    except Exception as error:  # a bug; the key id is in the step's own log above
        log.error("%s, and deleting its key failed (%s)", why, type(error).__name__)
    else:
        if withdrawn:
            log.warning("%s: deleted key %s", why, withdrawn)
    response.update(engine.failure(ActionError(why, Category.TRANSIENT)))


def serve(options: Options) -> int:
    """Serve until SIGTERM or SIGINT; then finish the calls in flight within the grace, and
    exit soon after it whatever they are blocked on, naming the keys they leave behind."""
    listening = listener.plan(
        host=options.host,
        port=options.port,
        unix=options.unix,
        tls_cert=options.tls_cert,
        tls_key=options.tls_key,
        tls_client_ca=options.tls_client_ca,
        tls_client_names=options.tls_client_names,
        insecure_plaintext=options.insecure_plaintext,
    )
    if options.policy.lends() and not listening.authenticated:
        raise ActionError(
            f"--lend-identity {options.policy.lend_identity}: this listener ({listening.mode} on "
            f"{listening.address}) does not authenticate its callers, and anyone reaching it "
            "would act with this server's AWS identity; listen on loopback or --unix, use "
            "mutual TLS (--tls-client-ca, --tls-client-name), or --insecure-plaintext on a "
            "closed network",
            Category.INVALID_INPUT,
        )
    if options.max_calls < 1 or options.max_call_seconds <= 0 or options.grace < 0:
        raise ActionError(
            "--max-calls must be at least 1, --max-call-seconds more than 0, --grace not negative",
            Category.INVALID_INPUT,
        )
    logs.install(options.log_format)
    logging.getLogger("plugin").setLevel(logging.INFO)  # for log_buffer, not the server's log
    interceptors = (
        [listener.ClientNames(options.tls_client_names)] if options.tls_client_names else []
    )
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=options.max_calls + RESERVE_THREADS, thread_name_prefix="plugin"
        ),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # grpc shares a port with another process by default (SO_REUSEPORT): a second
            # server on a busy port would take half the runner's calls. Refuse to start instead.
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = PluginServicer(options)
    pb_grpc.add_PluginServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = listener.bind(server, listening)
    metrics_at = None  # before anything serves: a metrics port it cannot have is a start-up error
    if options.metrics_port is not None:
        host = f"[{options.metrics_host}]" if ":" in options.metrics_host else options.metrics_host
        metrics_at = f"{host}:{servicer.metrics.serve(options.metrics_host, options.metrics_port)}"
    server.start()
    for service in ("", SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    where = listening.address if options.unix else f"{options.host}:{port}"
    print(
        f"iam-create-access-key: serving {SERVICE} on {where} ({listening.mode})",
        file=sys.stderr,
        flush=True,
    )
    if listening.warning:
        print(f"iam-create-access-key: warning: {listening.warning}", file=sys.stderr, flush=True)
    if metrics_at is not None:
        print(
            f"iam-create-access-key: metrics on http://{metrics_at}/metrics",
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
    return _exit_now(servicer.flights, options)


def _exit_now(flights: Flights, options: Options) -> NoReturn:
    """Give the calls grpc has cancelled a moment to finish, name what the rest leave behind,
    and leave: the executor's threads would otherwise hold the process open for as long as
    they are blocked (Python joins them at exit)."""
    ends = time.monotonic() + EXIT_MARGIN_SECONDS
    while flights.under_way() and time.monotonic() < ends:
        time.sleep(0.05)
    unfinished = flights.under_way()
    listed = _keys_of_unfinished(unfinished)
    for flight in unfinished:
        log.error(
            "%s",
            unfinished_report(flight, listed.get(flight.call_id)),
            extra={"call_id": flight.call_id},
        )
    if options.unix is not None:
        with contextlib.suppress(OSError):
            options.unix.unlink()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def _keys_of_unfinished(unfinished: list[Flight]) -> dict[str, list[str] | None]:
    """For each unfinished call that made no key it knows of, the keys IAM shows on its user
    since it started: all looked up at once, within EXIT_LISTING_SECONDS."""
    listed: dict[str, list[str] | None] = {}

    def look(call_id: str, request: dict[str, Any], since: float) -> None:
        listed[call_id] = engine.keys_created_since(request, since, EXIT_LISTING_SECONDS - 0.5)

    lookups = [
        threading.Thread(
            target=look,
            args=(flight.call_id, flight.request, flight.started_monotonic),
            daemon=True,
        )
        for flight in unfinished
        if flight.request is not None and not flight.undelivered()
    ]
    for lookup in lookups:
        lookup.start()
    ends = time.monotonic() + EXIT_LISTING_SECONDS
    for lookup in lookups:
        lookup.join(max(0.0, ends - time.monotonic()))
    return dict(listed)
