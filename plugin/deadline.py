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
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .context import bound

T = TypeVar("T")

DEFAULT_SECONDS = 120.0  # an invocation with no timeout of its own still ends


class DeadlineExceeded(Exception):
    """The budget ran out while a call was still under way (it may still complete)."""


class Deadline:
    """The moment an invocation must have answered by (monotonic clock).

    `enforced` when the request set it: calls are then cut off when it passes. Otherwise the
    default only sizes the socket timeouts and the time kept for reconciling.
    """

    def __init__(self, seconds: float | None) -> None:
        self.enforced = seconds is not None
        self.seconds = DEFAULT_SECONDS if seconds is None else float(seconds)
        self._expires = time.monotonic() + self.seconds

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
    Daemons, so that a call abandoned to a dripping endpoint never holds the process open."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1
        if reuse:
            self._tasks.put(task)
        else:
            threading.Thread(
                target=self._serve, args=(task,), name="iam-create-access-key-call", daemon=True
            ).start()

    def _serve(self, task: Callable[[], None]) -> None:
        while True:
            with contextlib.suppress(Exception):  # `work` keeps outcomes; a late handler's bug
                task()  # must not end the worker
            with self._lock:
                self._idle += 1
            task = self._tasks.get()


_WORKERS = _Workers()


class Lease:
    """Held while an invocation, or any worker still running one of its calls, is under way.

    A host that bounds the calls in flight (serve's slots) frees a slot only when the lease is
    let go by all: a call given up on at its deadline may still hold a worker thread, blocked
    on an endpoint that drips its answer, and counts until that worker is done.
    """

    def __init__(self, on_free: Callable[[], None]) -> None:
        self._holders = 1  # the invocation itself
        self._lock = threading.Lock()
        self._on_free = on_free

    def hold(self) -> None:
        with self._lock:
            self._holders += 1

    def let_go(self) -> None:
        with self._lock:
            self._holders -= 1
            free = self._holders == 0
        if free:
            self._on_free()


_LEASE: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("lease", default=None)


@contextlib.contextmanager
def leased(lease: Lease) -> Iterator[None]:
    """Run an invocation under `lease`; its workers hold it too, while they run."""
    try:
        with bound(_LEASE, lease):
            yield
    finally:
        lease.let_go()


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

    context = contextvars.copy_context()  # the worker acts for this invocation (its step log)
    lease = _LEASE.get()
    if lease is not None:
        lease.hold()

    def work() -> None:
        try:
            try:
                value = context.run(call)
            except BaseException as error:  # handed to the waiting thread, re-raised there
                outcome.error = error
                outcome.done.set()
                return
            with outcome.lock:
                outcome.value = value
                late = outcome.abandoned
                outcome.done.set()
            if late and on_late_result is not None:
                context.run(on_late_result, value)  # the invocation's witness sees it
        finally:
            if lease is not None:
                lease.let_go()

    _WORKERS.run(work)
    finished = outcome.done.wait(seconds)
    with outcome.lock:
        if not finished and not outcome.done.is_set():
            outcome.abandoned = True
            raise DeadlineExceeded(f"no answer within {seconds:.1f}s")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]
