"""Wait for a user IAM does not show yet.

Workflows create a user and, one step later, its key. IAM is eventually consistent: for a few
seconds after CreateUser, other calls may answer NoSuchEntity (Terraform's AWS provider retries
its reads after a create for this reason). NoSuchEntity means IAM did nothing, so the call is
safe to try again; every other refusal is reported as it is. A try whose answer did not come,
after which IAM still showed no such user (client_errors.NothingCreated), counts as one more
NoSuchEntity: when the wait ends, the step fails with IAM's refusal (code 3), never with "IAM may
have created a key", whatever ended it (the window, the step's time, a read timeout).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from plugin.aws.client_errors import NothingCreated, aws_code, translate
from plugin.contract.errors import ActionError
from plugin.runtime import key_witness
from plugin.runtime.deadline import Deadline, backoff_pauses, caller_gone, pause

T = TypeVar("T")
log = logging.getLogger(__name__)

TIME_KEPT_FOR_THE_CALL = 1.0  # a retry is not started with less of the deadline left than this


def retrying_while_missing(
    call: Callable[[], T],
    seconds: float,
    deadline: Deadline,
    sleep: Callable[[float], None] = pause,
    needed: float = TIME_KEPT_FOR_THE_CALL,
    creates: bool = False,
) -> T:
    """Run `call`; while it raises NoSuchEntity, try again with backoff for up to `seconds`
    (and within the deadline; a try is not started with less than `needed` of it left). With
    `seconds` 0 it is one attempt. When the window or the step's time runs out the error is
    IAM's NoSuchEntity, saying how long it waited and what ended the wait, and, when `call`
    `creates` a key, that none was created."""
    started = time.monotonic()
    pauses = backoff_pauses()
    slept = False  # whether it waited at all
    while True:
        try:
            result = call()
        except ClientError as error:
            if aws_code(error) != "NoSuchEntity":
                _report_wait(started, slept)
                raise
            if seconds <= 0:
                if isinstance(error, NothingCreated):
                    raise _unanswered(error) from None
                raise
            waited = time.monotonic() - started
            wait = min(next(pauses), seconds - waited) * random.uniform(0.8, 1.0)  # noqa: S311 (jitter)
            if wait <= 0:
                window = f"Wait For A New User was {seconds:g} s"
                raise _gave_up(error, started, slept, window, creates) from None
            if deadline.remaining() - wait < needed:
                # What is true when it stops: not "it had N s" (part of it is spent), but how
                # much was left, and that a pause and one more try would not fit in it.
                had = (
                    f"the step's time ran out first: {deadline.remaining():.1f} s of its "
                    f"{deadline.seconds:g} s were left, too few to wait {wait:.1f} s and try "
                    f"again (a try needs {needed:.1f} s)"
                )
                raise _gave_up(error, started, slept, had, creates) from None
            log.info("IAM does not show the user yet (NoSuchEntity); trying again in %.2fs", wait)
            sleep(wait)
            slept = True
            if caller_gone():  # nobody to create the key for any more
                raise _gave_up(error, started, slept, "the caller is gone", creates) from None
        else:
            _report_wait(started, slept)
            return result


def _report_wait(started: float, slept: bool) -> None:
    """A wait that happened, for the host's operator."""
    if slept:
        key_witness.report(key_witness.WAITED_FOR_USER, time.monotonic() - started)


def _gave_up(
    error: ClientError, started: float, slept: bool, why: str, creates: bool
) -> ActionError:
    """IAM's refusal, saying how long the wait was, what ended it, and that nothing was made."""
    _report_wait(started, slept)
    last = (
        f"; the last try got no answer ({error.cut})" if isinstance(error, NothingCreated) else ""
    )
    made = "; every answer was NoSuchEntity, so no key was created" if creates else ""
    return translate(
        error,
        advice=f" (waited {time.monotonic() - started:.1f}s for IAM to show the user; "
        f"{why}{last}{made})",
    )


def _unanswered(error: NothingCreated) -> ActionError:
    """The one try allowed got no answer, and IAM then showed no such user."""
    return translate(
        error, advice=f" ({error.cut}; IAM then showed no such user, so no key was created)"
    )
