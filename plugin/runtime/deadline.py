"""A time budget for one invocation, and a way to wait for a call no longer than the budget.

botocore's read timeout bounds each socket read, not a whole answer: an endpoint that drips a
byte a second never trips it. So when the request sets a timeout, each AWS call runs in a
worker thread (kept between calls) and the invocation stops waiting when its budget is spent;
the caller decides what a call that outlived it means. Without a timeout the call runs in the
caller's thread, bounded per socket read only.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from .context import bound

T = TypeVar("T")

# An unenforced deadline's length: it sizes the socket timeouts and the time kept for reconciling
# of an invocation with no timeout of its own, and never cuts a call.
DEFAULT_SECONDS = 120.0
# How long a worker kept for calls under a deadline waits for its next call before it ends.
IDLE_SECONDS = 60.0


class DeadlineExceeded(Exception):
    """The budget ran out while a call was still under way (it may still complete)."""


class Deadline:
    """The moment an invocation must have answered by (monotonic clock).

    `enforced` (a timeout was set): calls are cut off when it passes. An unenforced one never
    cuts a call: its DEFAULT_SECONDS only size the socket timeouts and the time kept for
    reconciling.
    """

    def __init__(self, seconds: float, *, enforced: bool = True) -> None:
        self.enforced = enforced
        self.seconds = float(seconds)
        self._expires = time.monotonic() + self.seconds

    @classmethod
    def unenforced(cls) -> Deadline:
        """No cut-off: each call is bounded by its socket timeouts only."""
        return cls(DEFAULT_SECONDS, enforced=False)

    @classmethod
    def from_timeout(cls, seconds: float | None) -> Deadline:
        """A request's timeout, enforced; unenforced when it sets none."""
        return cls.unenforced() if seconds is None else cls(seconds)

    def remaining(self) -> float:
        return max(0.0, self._expires - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


# Set when the caller of the invocation is gone (a runner that cancelled or hung up): waits for
# a user or for a usable key stop instead of going on for nobody. Unset outside `serve`.
_CALLER_GONE: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "caller_gone", default=None
)


@contextlib.contextmanager
def caller_gone_when(event: threading.Event) -> Iterator[None]:
    """Within the block, `event` being set means the invocation's caller is gone."""
    with bound(_CALLER_GONE, event):
        yield


def caller_gone() -> bool:
    gone = _CALLER_GONE.get()
    return gone is not None and gone.is_set()


def pause(seconds: float) -> None:
    """Sleep between tries; cut short when the caller is gone (then check caller_gone())."""
    gone = _CALLER_GONE.get()
    if gone is None:
        time.sleep(seconds)
    else:
        gone.wait(seconds)


def backoff_pauses(first: float = 0.25, longest: float = 2.0) -> Iterator[float]:
    """Pauses between tries of something that is not ready yet: doubling, then steady."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, longest)


class _Workers:
    """Daemon threads kept for calls under a deadline: handing a call to an idle one costs a
    fraction of starting a thread (the price of a hard deadline on a warm worker's every call).
    Daemons, so that a call abandoned to a dripping endpoint never holds the process open. A
    worker idle for IDLE_SECONDS ends: a burst (a dripping endpoint's calls given up on) leaves
    no threads behind for the process's life.

    Under the lock, `_idle` is the workers waiting for a task less the tasks queued for them: a
    task is queued only for a waiting worker, and a worker whose wait ends takes a task still
    queued rather than leave it to nobody."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1
                self._tasks.put(task)
        if not reuse:
            threading.Thread(
                target=self._serve, args=(task,), name="iam-create-access-key-call", daemon=True
            ).start()

    def _serve(self, task: Callable[[], None]) -> None:
        while True:
            with contextlib.suppress(Exception):  # `work` keeps outcomes; a late handler's bug
                task()  # must not end the worker
            with self._lock:
                self._idle += 1
            next_task = self._next()
            if next_task is None:
                return
            task = next_task

    def _next(self) -> Callable[[], None] | None:
        """The next task, or None when none came for IDLE_SECONDS (the worker then ends)."""
        try:
            return self._tasks.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with self._lock:
                try:
                    return self._tasks.get_nowait()  # queued for a waiting worker: this one
                except queue.Empty:
                    self._idle -= 1
                    return None


_WORKERS = _Workers()


# Calls given up on at their deadline whose worker is still blocked on the network (an endpoint
# that drips its answer): the invocation has ended and its host's slot is free, but the thread
# is not. A host bounds them (serve refuses new calls while too many are abandoned), in all and
# by whom they were given up for (`abandoned_for`: serve's client), so that one caller's
# dripping endpoint cannot spend the bound for every other.
_abandoned = 0
_abandoned_by: dict[Hashable, int] = {}
_abandoned_lock = threading.Lock()
_FOR: contextvars.ContextVar[Hashable | None] = contextvars.ContextVar("for", default=None)


@contextlib.contextmanager
def abandoned_for(owner: Hashable) -> Iterator[None]:
    """Within the block, calls given up on are counted for `owner` as well as in all."""
    with bound(_FOR, owner):
        yield


def abandoned(owner: Hashable | None = None) -> int:
    """Workers still running a call that its invocation gave up on: all of them, or those
    given up on for `owner`."""
    with _abandoned_lock:
        return _abandoned if owner is None else _abandoned_by.get(owner, 0)


def _count_abandoned(change: int, owner: Hashable | None) -> None:
    global _abandoned
    with _abandoned_lock:
        _abandoned += change
        if owner is not None:
            left = _abandoned_by.pop(owner, 0) + change
            if left > 0:
                _abandoned_by[owner] = left


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.abandoned = False
        self.lock = threading.Lock()
        self.value: T | None = None
        self.error: BaseException | None = None


def call_within(
    call: Callable[[], T],
    deadline: Deadline,
    reserve: float = 0.0,
    on_late_result: Callable[[T], None] | None = None,
) -> T:
    """Run `call`; if the deadline is enforced, wait no longer than what remains of it less
    `reserve`, and raise DeadlineExceeded if it has not finished by then.

    A call that finishes after it was given up on hands its result to `on_late_result` (in its
    own thread), so that, say, a key created too late can be deleted instead of orphaned.
    """
    if not deadline.enforced:
        return call()
    seconds = deadline.remaining() - reserve
    outcome: _Outcome[T] = _Outcome()
    owner = _FOR.get()

    context = contextvars.copy_context()  # the worker acts for this invocation (its step log)
    context.run(_IN_WORKER.set, True)  # its sends are bounded here, not once more inside

    def work() -> None:
        try:
            value = context.run(call)
        except BaseException as error:  # handed to the waiting thread, re-raised there
            with outcome.lock:
                outcome.error = error
                late = outcome.abandoned
                outcome.done.set()
            if late:
                _count_abandoned(-1, owner)
            return
        with outcome.lock:
            outcome.value = value
            late = outcome.abandoned
            outcome.done.set()
        if late:
            _count_abandoned(-1, owner)
            if on_late_result is not None:
                context.run(on_late_result, value)  # the invocation's witness sees it

    _WORKERS.run(work)
    finished = outcome.done.wait(seconds)
    with outcome.lock:
        if not finished and not outcome.done.is_set():
            outcome.abandoned = True
            _count_abandoned(1, owner)
            raise DeadlineExceeded(f"no answer within {seconds:.1f}s")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]


# The invocation's deadline for every AWS call it makes (set by a host that bounds whole calls,
# serve): each HTTP request of a client passed to bound_sends waits no longer than what remains
# of it. botocore's timeouts bound one socket read; an endpoint that drips its answer (a byte
# within each read timeout) would otherwise hold an AssumeRole, a vault write or a tag call, and
# the whole invocation, for as long as it likes.
_SENDS: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("sends", default=None)
# Set in call_within's workers: the call they run is bounded already (create.py's own handling
# of a late CreateAccessKey must see its result), so its sends are not bounded a second time.
_IN_WORKER: contextvars.ContextVar[bool] = contextvars.ContextVar("in_worker", default=False)
# What a delete of a key nobody can receive gets beyond the invocation's time: custody comes
# first (the caller's deadline has passed by then, or its answer failed).
CUSTODY_SECONDS = 2.0
_DELETE = b"Action=DeleteAccessKey"


@contextlib.contextmanager
def sends_within(deadline: Deadline) -> Iterator[None]:
    """Within the block, every send of a bounded client ends by `deadline`."""
    with bound(_SENDS, deadline):
        yield


def current() -> Deadline | None:
    """The deadline the invocation's sends keep (None outside a host that bounds calls)."""
    return _SENDS.get()


def bound_sends(client: Any) -> None:
    """Make every HTTP request of this botocore client keep the current invocation's deadline
    (sends_within). A request with no time left is not sent (ConnectTimeoutError: nothing
    reached AWS); one whose answer is not whole in time raises ReadTimeoutError (AWS may have
    acted), as botocore's own timeouts do, so callers handle both as they already do."""
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if http is None or getattr(http, "_iam_create_access_key_bounded", False):
        return
    send = http.send

    def bounded(request: Any) -> Any:
        deadline = _SENDS.get()
        if deadline is None or not deadline.enforced or _IN_WORKER.get():
            return send(request)
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        extra = CUSTODY_SECONDS if isinstance(body, bytes) and _DELETE in body else 0.0
        if deadline.remaining() + extra <= 0.05:
            raise ConnectTimeoutError(endpoint_url=request.url)
        try:
            return call_within(lambda: send(request), deadline, reserve=-extra)
        except DeadlineExceeded:
            raise ReadTimeoutError(endpoint_url=request.url) from None

    http.send = bounded
    http._iam_create_access_key_bounded = True
