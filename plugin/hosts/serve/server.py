"""`serve`: the action as a long-lived plugin that Blink's runner calls over gRPC.

A thin adapter: the servicer hands each message to `translation` and the engine functions,
and adds only what a server must: the step's own log (log_buffer), the call's deadline, a caller
that hung up, who may call and what they may ask (`listener`, `policy`), how many calls at once
(`calls`), what the operator sees (`metrics`, `logs`), the health services and a stop that ends
within its grace. grpc is imported only in this package, so the `run` path never pays for it.

The server is grpc's asyncio one (grpc.aio): a stream waiting for its request, a health check,
a Describe cost no thread; the action itself (synchronous boto3) runs in a bounded executor,
one thread per call slot. ExecuteAction and TestCredentials are served as streams on the
server side (the wire is the same for a unary client: one message each way), so that the
server reads the request itself, within a time, and writes the answer itself: the write
completing is where gRPC knows the answer went out, and an answer whose write fails is an
answer never received, whose key is deleted (grpc's own server, src/python/grpcio/grpc/_cython/
_cygrpc/aio/server.pyx.pxi: a unary handler's return value is sent after it returns, where the
handler can no longer learn whether it arrived; `context.cancelled()` reflects only a code the
handler set, not the core's RECEIVE_CLOSE_ON_SERVER result).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2

from plugin import engine
from plugin.contract.errors import ActionError, Category
from plugin.contract.request import MAX_TIMEOUT_SECONDS
from plugin.hosts.operator.policy import Policy
from plugin.hosts.operator.settings import DEFAULT_HOST, ServeSettings
from plugin.runtime import key_witness, redaction
from plugin.runtime.context import bound
from plugin.runtime.deadline import (
    CUSTODY_SECONDS,
    Deadline,
    abandoned_for,
    caller_gone_when,
    sends_within,
)

from . import cut, health_listener, listener, logs, memory, translation, wire
from .calls import (
    SHARED_SECONDS,
    UNREAD_MARK_SECONDS,
    BytesInFlight,
    Flight,
    Flights,
    Slots,
    UnreadAnswers,
    unfinished_report,
)
from .metrics import Metrics
from .protocol import integration_pack_pb2 as pb
from .reads import LastSeen, ReadGate, client_of
from .translation import MAX_LOG_BYTES, MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

SERVICE = "integration_pack.Plugin"
# What one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): the calls
# the server runs at once and room for the runner's health, HealthProbe and Describe beside
# them, at most grpc's usual 100. A client queues its streams past it (grpc's clients wait for
# a stream to end before they open another); a client that opens streams and never sends waits
# for its own, never anyone else's; and each connection's stalled streams hold memory for
# fewer streams (see the README, measured).
STREAMS_BESIDE_CALLS = 8
MOST_STREAMS_PER_CONNECTION = 100


def streams_per_connection(max_calls: int) -> int:
    return min(MOST_STREAMS_PER_CONNECTION, max_calls + STREAMS_BESIDE_CALLS)


# A TestCredentials request carries connections only: translation's own caps on them (8
# connections of 64 KiB) and room for the message's framing; a larger one is refused unparsed.
MAX_CREDENTIALS_MESSAGE_BYTES = translation.MAX_CONNECTIONS * (
    translation.MAX_CONNECTION_BYTES + 4096
)
# Connections at once (grpc core's connection quota; more wait in the kernel's backlog). The
# runner keeps one channel; probes open one each. Streams and connections together bound the
# memory stalled streams can take: see the README (measured).
MAX_CONNECTIONS = 32
# The HTTP/2 window of a stream whose request is not being read: a runner's request (a few
# KiB) fits it whole; 1,280 streams (32 connections x 40) that fill it hold 20 MiB.
STREAM_WINDOW_BYTES = 16 * 1024
# What an unlimited hard limit on open files allows: the kernel's fs.nr_open, by default.
KERNEL_OPEN_FILES = 2**20
IDLE_CONNECTION_MS = 5 * 60 * 1000  # an idle connection is closed (GOAWAY) after this
HANDSHAKE_MS = 10 * 1000  # a TLS handshake not done in this is dropped
KEEPALIVE_MS, KEEPALIVE_TIMEOUT_MS = 60 * 1000, 20 * 1000  # a dead peer is found in 80 s
# Kept back from a call's deadline, to answer (or to delete a key nobody could receive).
ANSWER_MARGIN = 0.5
# An answer is not sent with less time than this left (plus its size at this rate): it would
# arrive after the client's own deadline, which fires first (the server's deadline is the
# client's timeout counted from when the call reached it).
DELIVERY_SECONDS = 0.25
DELIVERY_BYTES_PER_SECOND = 20 * 1024 * 1024
# An answer with no key in it (an error) is written within this and its transfer time, whatever
# is left of the call's time: a client that never reads it (a zero flow-control window) held its
# slot and 8 MiB of --max-bytes-in-flight for the whole --max-call-seconds, refusing every other
# tenant (found by the red team, three streams).
KEYLESS_WRITE_SECONDS = 2.0
# An answer carrying a key is written within this and its transfer time (or what is left of the
# call's time, if less): a runner takes an answer at its socket in milliseconds, and a caller
# that does not read it holds a slot meanwhile (then its key is deleted and its client marked:
# calls.UnreadAnswers).
KEYED_WRITE_SECONDS = 10.0
# After the grace, what the calls still running get before the process exits regardless, and
# then what listing the keys of those that did not finish may take.
EXIT_MARGIN_SECONDS = 1.5
EXIT_LISTING_SECONDS = 2.5


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


class PluginServicer:
    """integration_pack.Plugin: messages in, the engine's request out, its answer back."""

    def __init__(self, settings: ServeSettings, policy: Policy) -> None:
        self.settings = settings
        self.policy = policy
        self.slots = Slots(settings.max_calls)
        self.unread = UnreadAnswers()  # clients that left answers carrying a key unread
        self.calling = LastSeen()  # clients that asked for slots lately (for their shares)
        self.port = 0  # the main port, once bound: whose connections `_cut_off` may close
        self.bytes_in_flight = BytesInFlight(settings.max_bytes_in_flight)
        self.reads = ReadGate()  # requests being received at once (and the health service's)
        self.trimmer = memory.Trimmer()
        self.flights = Flights()
        self.metrics = Metrics(settings.max_call_seconds)  # buckets up to it
        self.metrics.in_flight.set_function(self.flights.count)
        # One thread per slot runs the action: a call that holds a slot holds one of these.
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.max_calls, thread_name_prefix="plugin-call"
        )
        self.drain_ends: float | None = None  # monotonic: after SIGTERM, when calls must end
        self._cleanups: set[asyncio.Future[Any]] = set()

    def handlers(self) -> Any:
        """The service's methods, as grpc calls them."""
        # Every request is read by the method itself, through the read gate (reads.py): none
        # is received before a permit is free, whatever the number of streams.
        unary, both = grpc.stream_unary_rpc_method_handler, grpc.stream_stream_rpc_method_handler
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "HealthProbe": unary(
                    self.HealthProbe, pb.Empty.FromString, pb.HealthStatus.SerializeToString
                ),
                "Describe": unary(
                    self.Describe, pb.Empty.FromString, pb.PluginDescription.SerializeToString
                ),
                "GetActions": unary(
                    self.GetActions, pb.Empty.FromString, pb.ActionList.SerializeToString
                ),
                "ExecuteAction": both(
                    self.ExecuteAction,
                    None,  # the raw message: sized before it is parsed (ExecuteAction)
                    pb.ExecuteActionResponse.SerializeToString,
                ),
                "TestCredentials": both(
                    self.TestCredentials,
                    None,  # the raw message: sized before it is parsed, and parsed off the loop
                    pb.TestCredentialsResponse.SerializeToString,
                ),
            },
        )

    async def HealthProbe(self, requests: Any, context: Any) -> Any:
        await listener.first_message(context, self.reads)
        self.metrics.answered("HealthProbe", 0)
        return pb.HealthStatus(last_use=self.flights.last_use())

    async def Describe(self, requests: Any, context: Any) -> Any:
        await listener.first_message(context, self.reads)
        self.metrics.answered("Describe", 0)
        return _DESCRIPTION

    async def GetActions(self, requests: Any, context: Any) -> Any:
        await listener.first_message(context, self.reads)
        self.metrics.answered("GetActions", 0)
        return _ACTIONS

    async def TestCredentials(self, requests: Any, context: Any) -> None:
        # Raw, as ExecuteAction's: a small message of many tiny map entries parses to some 17
        # times its size and took the event loop (health's too) for a second (the red team's
        # 5 MiB of 290,000 connections: 90 MiB, 1.15 s). So it is sized first (a connection
        # test carries connections only), counted against --max-bytes-in-flight, and parsed in
        # the call's thread.
        raw = await listener.first_message(context, self.reads)
        if len(raw) > MAX_CREDENTIALS_MESSAGE_BYTES:
            size = len(raw)
            del raw
            await _refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"a TestCredentials request carries its connections only: at most "
                f"{MAX_CREDENTIALS_MESSAGE_BYTES} bytes (this one: {size})",
            )
        claimed = self._claim("TestCredentials", "testing a connection", len(raw), context)
        if isinstance(claimed, str):
            del raw
            await _refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, claimed)
        flight = claimed
        gone = _gone_when_done(context)
        budget = self._time_for(0, context)
        work = self._run(flight, gone, budget, self._test_credentials, raw, budget)
        del raw
        try:
            response = await asyncio.shield(work)
        except asyncio.CancelledError:
            self._after(work, flight, lambda: self.metrics.answered("TestCredentials", 4))
            raise
        if response is None:  # not a TestCredentialsRequest (invalid UTF-8 in a string, say)
            self._end(flight)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, listener.UNREADABLE)
        # No key rides on a connection test's answer: the slot is free while it is written,
        # and a caller that does not read it holds its bytes only as long as a reader needs.
        self._free_slot(flight)
        try:
            await asyncio.wait_for(
                context.write(translation.credentials_response(pb, response)),
                max(DELIVERY_SECONDS, min(budget, KEYLESS_WRITE_SECONDS)),
            )
        except asyncio.TimeoutError:
            self._cut_off(context, "a connection test's")
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "the answer was not read in time"
            )
        finally:
            self.metrics.answered("TestCredentials", response.error_code)
            self._end(flight)

    async def ExecuteAction(self, requests: Any, context: Any) -> None:
        started = time.monotonic()
        # The message as it came (registered without a deserializer): its size is counted
        # against --max-bytes-in-flight before a byte of it is parsed, so a refused one is
        # never parsed nor copied (a 4 MiB context costs a copy at each step).
        raw = await listener.first_message(context, self.reads)
        size = len(raw)
        claimed = self._claim("ExecuteAction", "an ExecuteAction not yet read", size, context)
        if isinstance(claimed, str):
            del raw  # an aborted call's frame can outlive it (in its exception)
            self.trimmer.after(size)
            await _refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, claimed)
        flight = claimed
        gone = _gone_when_done(context)
        # Counted and parsed in the call's thread, not on the event loop (wire.py: a message
        # of tiny map entries parses to 17 times its size); the message's own timeout is
        # known there, so the call's time is settled there (within this, its longest).
        most = self._time_for(0, context)
        # In a holder the thread empties: the raw bytes live until parsed, not for the call.
        work = self._run(flight, gone, most, self._execute, [raw], context, flight, gone)
        del raw
        try:
            done = await asyncio.shield(work)
        except asyncio.CancelledError:  # the caller went (cancelled, out of time, hung up)
            gone.set()
            self._later(self._withdraw_when_done(work, flight, gone, started, HUNG_UP))
            raise
        if done is None:  # not an ExecuteActionRequest (invalid UTF-8 in a string, say)
            self._end(flight)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, listener.UNREADABLE)
        answer, size, engine_request, response, budget = done
        if answer is None:  # larger than --max-answer-bytes: not sent, its key deleted
            self._count_execute(response.error_code, started)
            self._end(flight)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, response.error_message)
        if engine_request is not None and not _time_to_deliver(context, size):
            gone.set()
            self._later(self._withdraw_when_done(work, flight, gone, started, UNDELIVERED))
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the call's deadline left no time to deliver its answer; its key was deleted",
            )
        delivered = False
        try:
            # Bounded: a client that never reads (a zero window) would hold the slot and the
            # key past the call's time; one not written in time is an answer not received.
            write_for = self._time_to_write(started, budget)
            transfer = size / DELIVERY_BYTES_PER_SECOND
            if response.ok:
                write_for = min(write_for, KEYED_WRITE_SECONDS + transfer)
            else:  # no key rides on it: a caller that does not read it holds its request's
                # bytes only as long as a reader needs to take it, and, when the call left no
                # key behind, no slot at all
                write_for = min(write_for, KEYLESS_WRITE_SECONDS + transfer)
                if not flight.undelivered():
                    self._free_slot(flight)
            writing = time.monotonic()
            await asyncio.wait_for(context.write(answer), write_for)
            delivered = True
            if response.ok and time.monotonic() - writing > KEYLESS_WRITE_SECONDS + transfer:
                # taken, but late: a client that reads its keys slowly holds slots as one that
                # never reads them does (the fifth red team read each after 8 s, from one
                # address, and held all 32): its share is limited the same way
                self.unread.note(flight.client)
        except asyncio.TimeoutError:
            pass  # not read in time: not delivered
        finally:
            if response.ok and not delivered:
                # a key not taken, whether its write ran out of time or the client reset the
                # stream while the answer waited (the eighth red team reset each just inside
                # the 10 s, never marked): its client's share of the slots is limited
                self.unread.note(flight.client)
            if delivered or engine_request is None:
                self._count_execute(response.error_code, started)
                self._end(flight)
            else:  # not received: cancelled, out of time, or refused by the client's limits
                gone.set()
                self._later(self._withdraw_when_done(work, flight, gone, started, UNDELIVERED))
        if not delivered:  # the write timed out: end the RPC (a key it carried is being deleted)
            self._cut_off(context, f"call {flight.call_id}'s")
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the answer was not read in time"
                + ("; its key was deleted" if response.ok else ""),
            )

    def _execute(
        self, holder: list[bytes], context: Any, flight: Flight, gone: threading.Event
    ) -> tuple[Any, int, dict[str, Any] | None, engine.Response, float] | None:
        """The action, in an executor thread: the answer to write (None if it would pass
        --max-answer-bytes: then its key is deleted), its size, what it was made of and the
        call's time (None for a message that is no ExecuteActionRequest)."""
        raw = holder.pop()
        try:
            scan = wire.execute_request(raw)  # counted before parsing: see wire.py
            message = None if scan.refusal else pb.ExecuteActionRequest.FromString(raw)
        except (wire.Unreadable, DecodeError):  # invalid UTF-8 in a string field, say
            return None
        # Read once: each read of a bytes field is a copy of it.
        echo = raw[slice(*scan.context)] if message is None else message.context
        del raw
        budget = self._time_for(scan.timeout if message is None else message.timeout, context)
        with sends_within(Deadline(budget)):
            return (*self._act(message, scan.refusal, echo, flight, gone, budget), budget)

    def _act(
        self, message: Any, refusal: ActionError | None, echo: bytes, flight: Flight,
        gone: threading.Event, budget: float,
    ) -> tuple[Any, int, dict[str, Any] | None, engine.Response]:  # fmt: skip
        """The parsed request (or the scan's refusal of it) to its answer, its size, and what
        it was made of."""
        limit = self.settings.max_answer_bytes
        started = time.monotonic()
        with step_log() as step:
            step.note(
                f"call {flight.call_id}: ExecuteAction "
                f"{translation.shown(message.name if message is not None else '')} at "
                + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            )
            engine_request: dict[str, Any] | None = None
            try:
                if refusal is not None:
                    raise refusal
                engine_request = translation.engine_request(message, budget, len(echo), limit)
            except ActionError as error:
                response = engine.Response.failure(error)
            else:
                flight.request = engine_request
                flight.subject = _subject(engine_request)
                response = engine.respond(engine_request, self.policy.admit)
                if gone.is_set():
                    response = _withdraw(
                        engine_request, response, flight, HUNG_UP, self.policy.admit
                    )
            step.note(
                f"finished in {(time.monotonic() - started) * 1000:.0f} ms: error code "
                f"{response.error_code}" + ("" if response.ok else f" ({response.error_message})")
            )
            # A context too large to carry back is refused (code 2) and not echoed.
            fits = len(echo) <= translation.most_context_bytes(limit)
            answer = translation.execute_response(pb, response, b"", step.text())
            size = translation.with_context(answer, echo if fits else b"")
            if size > limit and engine_request is not None:
                # The context was sized beforehand, with room for the rest: a result, log or
                # error far larger than any seen. Not sent (the client would refuse it, or
                # count it against a limit set to this), and no live key left behind.
                withdrawn = _withdraw(
                    engine_request,
                    response,
                    flight,
                    f"the answer, {size} bytes, is larger than --max-answer-bytes ({limit})",
                    self.policy.admit,
                )
                deleted = not flight.undelivered()
                kept = "was deleted" if deleted else "could not be deleted (see the server's log)"
                said = f"{withdrawn.error_message}; it was not sent, and its key {kept}"
                return (
                    None,
                    size,
                    engine_request,
                    dataclasses.replace(withdrawn, error_message=said),
                )
        return answer, size, engine_request, response

    def _test_credentials(self, raw: bytes, budget: float) -> engine.Response | None:
        """A connection test, in an executor thread: its answer (None for a message that is no
        TestCredentialsRequest)."""
        try:
            scan = wire.credentials_request(raw)  # counted before parsing: see wire.py
            if scan.refusal is not None:
                return engine.Response.failure(scan.refusal)
            message = pb.TestCredentialsRequest.FromString(raw)
        except (wire.Unreadable, DecodeError):
            return None
        try:
            engine_request = translation.credentials_request(message, budget)
        except ActionError as error:
            return engine.Response.failure(error)
        return engine.respond_to_connection_test(engine_request, self.policy.admit)

    def _run(
        self, flight: Flight, gone: threading.Event, budget: float, work: Callable[..., Any],
        *arguments: Any,
    ) -> asyncio.Future[Any]:  # fmt: skip
        """`work` in an executor thread, as the call: its witness, its log's call id, its
        caller's going, and every AWS request within `budget` (deadline.sends_within)."""
        metrics = self.metrics

        def witness(event: str, detail: str | float) -> None:
            before = flight.witness(event, detail)
            metrics.witnessed(event, detail, before, flight.caller_hung_up)

        def as_the_call() -> Any:
            with (
                key_witness.witnessed_by(witness),
                caller_gone_when(gone),
                logs.about_call(flight.call_id),
                sends_within(Deadline(budget)),
                abandoned_for(flight.client),
            ):
                return work(*arguments)

        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.executor, contextvars.copy_context().run, as_the_call)

    def _count_execute(self, error_code: int, started: float) -> None:
        self.metrics.answered("ExecuteAction", int(error_code))
        self.metrics.duration.observe(time.monotonic() - started)

    def _after(self, work: asyncio.Future[Any], flight: Flight, count: Callable[[], None]) -> None:
        """The call has ended for grpc but its thread has not: count it and free its slot when
        the thread is done."""

        def done(finished: asyncio.Future[Any]) -> None:
            self._cleanups.discard(finished)
            count()
            self._end(flight)

        self._cleanups.add(work)
        work.add_done_callback(done)

    def _later(self, cleanup: Any) -> None:
        """Run `cleanup` after the RPC has ended (kept referenced until it is done)."""
        task = asyncio.ensure_future(cleanup)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _withdraw_when_done(
        self, work: asyncio.Future[Any], flight: Flight, gone: threading.Event, started: float,
        why: str,
    ) -> None:  # fmt: skip
        """An ExecuteAction whose answer was not received: once its thread is done, delete the
        key it made unless the thread saw the caller go and did it already; count it (code 4)
        and free its slot. Decided here, in one place, so no race between the caller going
        and the action finishing leaves a key."""
        # Cancelled at exit: the flight stays open, and the exit names its key.
        try:
            done = await work  # None: an unreadable message, nothing done
            engine_request, response = (None, None) if done is None else done[2:4]
            if engine_request is not None and not flight.hung_up:
                await self._run(
                    flight, gone, CUSTODY_SECONDS + 1, _withdraw, engine_request, response,
                    flight, why, self.policy.admit,
                )  # fmt: skip
        except Exception:  # a bug (the action's errors are answers): the slot is freed anyway
            log.error("a call's clean-up failed", exc_info=True)
        self._count_execute(Category.TRANSIENT, started)
        self._end(flight)

    def _claim(self, rpc: str, subject: str, carried: int, context: Any) -> Flight | str:
        """A call slot for the caller's client and room for its request's `carried` bytes (a
        flight), or why not (said as RESOURCE_EXHAUSTED at once, never queued, before any AWS
        request)."""
        client = client_of(context.peer())
        if self.slots.abandoned_too_many(client):
            self.metrics.refused.labels(rpc=rpc).inc()
            return (
                f"{self.slots.abandoned_limit} calls given up on are still waiting for "
                "endpoints that do not answer, some of them this client's; try again shortly"
            )
        shared = self.calling.others_within(client, SHARED_SECONDS)
        self.calling.note(client)
        refused = self.slots.take(client, self.unread.marked(client), shared)
        if refused is not None:
            self.metrics.refused.labels(rpc=rpc).inc()
            if refused == "shared":
                return (
                    f"other clients are calling too: one client may hold "
                    f"{self.slots.shared_most} of the {self.slots.size} call slots, as this one "
                    "does now; try again shortly"
                )
            if refused == "marked":
                return (
                    "this client left an answer carrying a key unread or took it late, so until "
                    f"{UNREAD_MARK_SECONDS:g} s after the last one it may hold "
                    f"{self.slots.marked_most} of the {self.slots.size} call slots, as it does "
                    "now; try again shortly"
                )
            return f"all {self.slots.size} call slots of this plugin are busy; try again shortly"
        no_room = self.bytes_in_flight.take(carried, client, shared)
        if no_room is not None:
            self.slots.give_back(client)
            self.metrics.refused_for_bytes.labels(rpc=rpc).inc()
            if no_room == "shared":
                return (
                    f"other clients are calling too: one client's requests in flight may carry "
                    f"{self.bytes_in_flight.shared_most} bytes of --max-bytes-in-flight "
                    f"({self.bytes_in_flight.budget}), and this call's {carried} would pass "
                    "that; try again shortly"
                )
            # What others carry is theirs: not said (a caller could watch other tenants' load).
            return (
                f"this call's {carried} bytes of request, with the calls in flight, would pass "
                f"--max-bytes-in-flight ({self.bytes_in_flight.budget}); try again shortly"
            )
        flight = self.flights.begin(subject)
        flight.carried = carried
        flight.client = client
        return flight

    def _end(self, flight: Flight) -> None:
        self.flights.end(flight)
        self._free_slot(flight)
        self.bytes_in_flight.give_back(flight.carried, flight.client)
        self.trimmer.after(flight.carried)

    def _free_slot(self, flight: Flight) -> None:
        """Give the call's slot back (once): at its end, or before writing an answer that
        carries no key (the action is done, and a caller that never reads such an answer must
        not hold what other callers need: the fourth red team held all 32 slots for 60 s with
        TestCredentials and no credentials)."""
        if flight.holds_slot:
            flight.holds_slot = False
            self.slots.give_back(flight.client)

    def _cut_off(self, context: Any, whose: str) -> None:
        """An answer was not read in time: it stays in grpc's send queue (and in memory) until
        its connection closes, so close it (cut.py); the caller's other calls on it end too."""
        if cut.cut(context.peer(), self.port):
            log.warning(
                "%s answer was not read in time: its connection (%s) was closed",
                whose,
                context.peer(),
            )

    def _time_to_write(self, started: float, budget: float) -> float:
        """How long an answer's write may take: what is left of the call's time, and at least
        DELIVERY_SECONDS (a call that used all its time still gets its answer out)."""
        return max(DELIVERY_SECONDS, budget - (time.monotonic() - started))

    def _time_for(self, timeout: int, context: Any) -> float:
        cap = self.settings.max_call_seconds
        if self.drain_ends is not None:  # stopping: no call outlives the drain
            cap = min(cap, max(0.1, self.drain_ends - time.monotonic() - ANSWER_MARGIN))
        return _time_for_the_call(timeout, context, cap)


_DESCRIPTION = translation.plugin_description(pb)
_ACTIONS = pb.ActionList(actions=[translation.action_message(pb)])


def _time_to_deliver(context: Any, size: int) -> bool:
    """Whether the call's deadline leaves time for the answer to arrive whole. HTTP/2 has no
    receipt: an answer written in the last moments is in the client's socket when its deadline
    fires (it sees DEADLINE_EXCEEDED, the server a completed write). So an answer is sent only
    with DELIVERY_SECONDS to spare, plus its transfer at a modest rate; otherwise it is an
    answer not received, and its key is deleted."""
    remaining = context.time_remaining()
    if remaining is None:
        return True
    return bool(remaining > DELIVERY_SECONDS + size / DELIVERY_BYTES_PER_SECOND)


async def _refuse(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the RPC with this code (grpc's abort raises; typed here so)."""
    await context.abort(code, message)
    raise AssertionError("context.abort returned")


def _gone_when_done(context: Any) -> threading.Event:
    """Set when the RPC has ended (answered, cancelled, hung up or out of time): the call's
    waits stop instead of going on for nobody."""
    gone = threading.Event()
    context.add_done_callback(lambda _context: gone.set())
    return gone


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
UNDELIVERED = (
    "the answer did not reach the caller (cancelled, out of time, or refused by its limits)"
)


def _withdraw(
    engine_request: dict[str, Any],
    response: engine.Response,
    flight: Flight,
    why: str,
    admit: engine.Admit,
) -> engine.Response:
    """The answer cannot reach the caller (it hung up: cancelled, disconnected or out of time):
    its key must not outlive the call; what the call answers instead. `admit`: the policy the
    call ran under, so the delete signs in as the call did (the operator's external ID for a
    lent role)."""
    flight.hung_up = True
    flight.caller_hung_up = why == HUNG_UP  # else written and not received: undeliverable
    try:
        with sends_within(Deadline(CUSTODY_SECONDS)):  # the call's own time may be spent
            withdrawn = engine.withdraw(engine_request, response, admit)
    except ActionError as error:
        log.error("%s, and its key could not be deleted: %s", why, error)
    except Exception as error:  # a bug; the key id is in the step's own log above
        log.error("%s, and deleting its key failed (%s)", why, type(error).__name__)
    else:
        if withdrawn:
            log.warning("%s: deleted key %s", why, withdrawn)
    return engine.Response.failure(ActionError(why, Category.TRANSIENT))


def serve(settings: ServeSettings) -> int:
    """Serve until SIGTERM or SIGINT; then say NOT_SERVING, keep serving what still arrives for
    --shutdown-delay, finish the calls in flight within the grace, and exit soon after it
    whatever they are blocked on, naming the keys they leave behind."""
    try:
        policy = Policy.from_settings(settings)
    except ValueError as error:
        raise ActionError(str(error), Category.INVALID_INPUT) from None
    listening = listener.plan(settings)
    if policy.lends() and not listening.authenticated:
        raise ActionError(
            f"--lend-identity {policy.lend_identity}: this listener ({listening.mode} on "
            f"{listening.address}) does not authenticate its callers, and anyone reaching it "
            "would act with this server's AWS identity; listen on loopback or --unix, use "
            "mutual TLS (--tls-client-ca, --tls-client-name), or --insecure-plaintext on a "
            "closed network",
            Category.INVALID_INPUT,
        )
    if not (
        settings.max_calls >= 1
        and 0 < settings.max_call_seconds < math.inf
        and 0 <= settings.grace < math.inf
        and 0 <= settings.shutdown_delay < math.inf
    ):
        raise ActionError(
            "--max-calls must be at least 1, --max-call-seconds more than 0, --grace and "
            "--shutdown-delay not negative (all finite)",
            Category.INVALID_INPUT,
        )
    _open_files_up_to_the_hard_limit()
    logs.install(settings.log_format)
    _quiet_libraries()
    logging.getLogger("plugin").setLevel(logging.INFO)  # for log_buffer, not the server's log
    for chatty in ("asyncio", "grpc._cython"):  # their loop's set-up, before the ready line
        logging.getLogger(chatty).setLevel(logging.INFO)
    asyncio.run(_serve(settings, policy, listening))  # exits the process from inside (os._exit)
    raise AssertionError("serve exits from its loop")


async def _serve(
    settings: ServeSettings, policy: Policy, listening: listener.Listening
) -> NoReturn:
    names = listener.client_names(settings.tls_client_name) if settings.tls_client_name else None
    server = grpc.aio.server(
        # Under mutual TLS every method checks the certificate first; otherwise no interceptor
        # (its machinery is a part of every call's price): the unary methods then wait for their
        # request as grpc.aio does, without a thread, within the stream and connection caps.
        interceptors=[listener.Guard(names)] if names else [],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # grpc shares a port with another process by default (SO_REUSEPORT): a second
            # server on a busy port would take half the runner's calls. Refuse to start instead.
            ("grpc.so_reuseport", 0),
            ("grpc.max_concurrent_streams", streams_per_connection(settings.max_calls)),
            # A stream whose request is not being read receives at most this window, fixed:
            # BDP probing would raise every stream's initial window to 16 MiB (chttp2's
            # TransportFlowControl::PeriodicUpdate), so unread streams would buffer whole
            # 4 MiB requests before the read gate (reads.py) could hold them back.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
            ("grpc.max_allowed_incoming_connections", MAX_CONNECTIONS),
            ("grpc.max_connection_idle_ms", IDLE_CONNECTION_MS),
            ("grpc.server_handshake_timeout_ms", HANDSHAKE_MS),
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ],
    )
    servicer = PluginServicer(settings, policy)
    server.add_generic_rpc_handlers((servicer.handlers(),))
    health_servicer = health.aio.HealthServicer()
    server.add_generic_rpc_handlers((_gated_health(health_servicer, servicer.reads),))
    port = listener.bind(server, listening)
    servicer.port = port
    metrics_line = None  # before anything serves: a metrics port it cannot have is a start-up
    if settings.metrics_port is not None:  # error (Metrics.serve: ActionError, one line)
        host = (
            f"[{settings.metrics_host}]" if ":" in settings.metrics_host else settings.metrics_host
        )
        bound = servicer.metrics.serve(settings.metrics_host, settings.metrics_port)
        metrics_line = f"metrics on http://{host}:{bound}/metrics"
    health_line = health_socket_line = None
    if settings.health_port is not None:  # outside the main port's connection cap
        health_host = DEFAULT_HOST if settings.unix else settings.host
        # kept referenced here until the process exits: it answers NOT_SERVING through the drain
        _health_server, health_port = await health_listener.start(
            health_servicer, health_host, settings.health_port
        )
        health_line = (
            f"health on {health_listener.address(health_host, health_port)} "
            "(grpc.health.v1 only, plaintext)"
        )
    if settings.health_socket is not None:  # no network caller reaches it: for exec probes
        # kept referenced here until the process exits, as the health port's
        _health_socket_server = await health_listener.start_socket(
            health_servicer, settings.health_socket
        )
        health_socket_line = (
            f"health on unix socket {settings.health_socket}, mode 0600 (grpc.health.v1 only)"
        )
    await server.start()
    servicer.trimmer.every()  # freed memory given back whatever the calls carried
    for service in ("", SERVICE):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    where = listening.address if settings.unix else f"{settings.host}:{port}"
    say = _Say(settings.log_format)
    say(f"serving {SERVICE} on {where} ({listening.mode})")
    if listening.warning:
        say(f"warning: {listening.warning}", "WARNING")
    if metrics_line:
        say(metrics_line)
    if health_line:
        say(health_line)
    if health_socket_line:
        say(health_socket_line)
    await stopping.wait()
    # Readiness first: the endpoint's removal races the signal, so calls still arrive for a
    # moment and are served; then no new call, and the drain.
    await health_servicer.enter_graceful_shutdown()
    servicer.drain_ends = time.monotonic() + settings.shutdown_delay + settings.grace
    say(
        f"stopping; finishing the calls in flight (at most {settings.grace:g} s), after "
        f"serving for {settings.shutdown_delay:g} s more the calls still arriving (readiness "
        "NOT_SERVING)"
    )
    await asyncio.sleep(settings.shutdown_delay)
    await server.stop(settings.grace)
    # The calls grpc has cancelled get a moment to finish (their withdrawals complete on this
    # loop); then the exit, from inside the loop: asyncio.run's teardown would cancel what is
    # left (grpc logs each as an unhandled CancelledError) and hide unfinished calls.
    ends = time.monotonic() + EXIT_MARGIN_SECONDS
    while servicer.flights.under_way() and time.monotonic() < ends:
        await asyncio.sleep(0.05)
    _exit_now(servicer.flights, settings, policy)


def _gated_health(health_servicer: Any, gate: ReadGate) -> Any:
    """grpc.health.v1 on the main port, its requests read through the read gate as every
    other method's (grpc.aio would post a read for each stream of a unary method at once)."""

    async def check(requests: Any, context: Any) -> Any:
        return await health_servicer.Check(await listener.first_message(context, gate), context)

    async def watch(requests: Any, context: Any) -> None:
        await health_servicer.Watch(await listener.first_message(context, gate), context)

    request = health_pb2.HealthCheckRequest.FromString
    answer = health_pb2.HealthCheckResponse.SerializeToString
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.stream_unary_rpc_method_handler(check, request, answer),
            "Watch": grpc.stream_stream_rpc_method_handler(watch, request, answer),
        },
    )


class _Say:
    """The server's own lines (ready, warning, stopping), in --log-format."""

    def __init__(self, log_format: str) -> None:
        self.json = log_format == logs.JSON

    def __call__(self, line: str, level: str = "INFO") -> None:
        if self.json:
            now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
            record = {"time": now, "level": level, "logger": __name__, "message": line}
            text = json.dumps({**record, "call_id": None})
        else:
            text = f"iam-create-access-key: {line}"
        print(text, file=sys.stderr, flush=True)


class _NoResponseBytes(logging.Filter):
    """urllib3 warns of an answer's malformed headers with a traceback that quotes the bytes
    it read (connection.py or connectionpool.py by version, "Failed to parse headers"): one
    line instead, no bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Failed to parse headers"):
            record.msg, record.args = "an endpoint sent malformed response headers", None
            record.exc_info = record.exc_text = None
        return True


class _OneLineForAHangUp(logging.Filter):
    """grpc.aio logs a write that failed because the caller hung up mid-answer (its
    ExecuteBatchError) at ERROR with a traceback, when it has not yet seen the caller go
    (_handle_exceptions in src/python/grpcio/grpc/_cython/_cygrpc/aio/server.pyx.pxi: silent only
    if `rpc_state.client_closed` is already set, which races the failed write). The server's
    log carries one line a warning: this one, naming the method; what became of the answer's
    key the custody line says (deleted, or left and named)."""

    PREFIX = "ExecuteBatchError raised in core by servicer method ["

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name.startswith("grpc") and message.startswith(self.PREFIX):
            method = message[len(self.PREFIX) :].rstrip("]")
            record.msg = "the caller went while the answer to %s was being written"
            record.args = (method,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = record.stack_info = None
        return True


def _open_files_up_to_the_hard_limit() -> None:
    """Raise the soft limit on open files to the hard one, as Go's runtime does for every Go
    server since 1.19. containerd no longer raises it for the containers it starts
    (containerd/containerd#8924 removed its service's LimitNOFILE): a container gets 1024, and
    a server at --max-calls 1024 holds a socket a call beside its connections, health port and
    workers still reading a dripping endpoint, so calls would fail where they should be refused.
    The hard limit stays as the operator set it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = KERNEL_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    with contextlib.suppress(ValueError, OSError):  # a sandbox that refuses: keep what was given
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _quiet_libraries() -> None:
    """On every handler of the server's log (a logger's filter would miss its children)."""
    for handler in logging.getLogger().handlers:
        for quiet in (_NoResponseBytes, _OneLineForAHangUp):
            if not any(isinstance(f, quiet) for f in handler.filters):
                handler.filters.insert(0, quiet())


def _exit_now(flights: Flights, settings: ServeSettings, policy: Policy) -> NoReturn:
    """Name what the calls still unfinished leave behind, and leave: the executor's threads
    would otherwise hold the process open for as long as they are blocked (Python joins them
    at exit)."""
    unfinished = flights.under_way()
    listed = _keys_of_unfinished(unfinished, policy.admit)
    for flight in unfinished:
        log.error(
            "%s",
            unfinished_report(flight, listed.get(flight.call_id)),
            extra={"call_id": flight.call_id},
        )
    for socket_path in (settings.unix, settings.health_socket):
        if socket_path is not None:
            with contextlib.suppress(OSError):
                socket_path.unlink()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def _keys_of_unfinished(
    unfinished: list[Flight], admit: engine.Admit
) -> dict[str, list[str] | None]:
    """For each unfinished call that made no key it knows of, the keys IAM shows on its user
    since it started: all looked up at once, within EXIT_LISTING_SECONDS."""
    listed: dict[str, list[str] | None] = {}

    def look(call_id: str, request: dict[str, Any], since: float) -> None:
        listed[call_id] = engine.keys_created_since(
            request, since, EXIT_LISTING_SECONDS - 0.5, admit
        )

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
