"""The threads that run AWS calls under a deadline: kept between calls, gone after a burst.

A dripping endpoint's calls are given up on at their deadline while their threads still read;
serve sees bursts of them. The threads must serve the next calls while they last, and end once
nothing has come for a while, so that a burst leaves nothing behind for the process's life.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from plugin.runtime import deadline
from plugin.runtime.deadline import Deadline, DeadlineExceeded, call_within

WORKER_NAME = "iam-create-access-key-call"


def workers() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == WORKER_NAME)


def until(condition: Callable[[], bool], seconds: float) -> bool:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_burst_of_calls_given_up_on_leaves_no_threads_once_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deadline, "IDLE_SECONDS", 0.3)
    before = workers()
    release = threading.Event()
    burst = 40

    for _ in range(burst):  # each call blocks, as on an endpoint that drips, and is given up on
        with pytest.raises(DeadlineExceeded):
            call_within(release.wait, Deadline(0.01))
    assert workers() >= burst, "each blocked call had a thread of its own"

    release.set()  # the drips end; the threads fall idle
    assert until(lambda: workers() <= before, 10), f"{workers()} threads left, {before} before"


def test_sequential_calls_share_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadline, "IDLE_SECONDS", 5.0)
    call_within(lambda: None, Deadline(5))  # one worker is idle now (or was already)
    started = {*threading.enumerate()}

    names = {call_within(lambda: threading.current_thread(), Deadline(5)) for _ in range(50)}

    assert len(names) == 1
    assert {*threading.enumerate()} - started == set(), "no thread was started for them"


def test_no_call_is_lost_when_workers_end_as_calls_arrive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers whose wait ends while a call is handed to them: every call still runs once."""
    monkeypatch.setattr(deadline, "IDLE_SECONDS", 0.001)
    ran: list[int] = []
    lock = threading.Lock()

    def call(number: int) -> int:
        with lock:
            ran.append(number)
        return number

    def caller(first: int) -> None:
        for number in range(first, first + 300):
            assert call_within(lambda n=number: call(n), Deadline(10)) == number  # type: ignore[misc]
            if number % 7 == 0:
                time.sleep(0.002)  # let some workers' waits end

    callers = [threading.Thread(target=caller, args=(n * 1000,)) for n in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(60)

    assert sorted(ran) == sorted(n * 1000 + i for n in range(8) for i in range(300))
