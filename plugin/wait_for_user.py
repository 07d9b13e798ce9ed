"""Wait for a user IAM does not show yet.

Workflows create a user and, one step later, its key. IAM is eventually consistent: for a few
seconds after CreateUser, other calls may answer NoSuchEntity (Terraform's AWS provider retries
its reads after a create for this reason). NoSuchEntity means IAM did nothing, so the call is
safe to try again; every other refusal is reported as it is.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from . import resources
from .deadline import Deadline, backoff_pauses, caller_gone, pause
from .errors import ActionError
from .failures import aws_code, translate

T = TypeVar("T")
log = logging.getLogger(__name__)

TIME_KEPT_FOR_THE_CALL = 1.0  # a retry is not started with less of the deadline left than this


def retrying_while_missing(
    call: Callable[[], T],
    seconds: float,
    deadline: Deadline,
    head: str,
    sleep: Callable[[float], None] = pause,
) -> T:
    """Run `call`; while it raises NoSuchEntity, try again with backoff for up to `seconds`
    (and within the deadline). With `seconds` 0 it is one attempt. When the window runs out
    the error is IAM's NoSuchEntity, saying how long it waited."""
    started = time.monotonic()
    pauses = backoff_pauses()
    while True:
        try:
            return call()
        except ClientError as error:
            if aws_code(error) != "NoSuchEntity" or seconds <= 0:
                raise
            waited = time.monotonic() - started
            wait = min(next(pauses), seconds - waited) * random.uniform(0.8, 1.0)  # noqa: S311 (jitter)
            if wait <= 0 or deadline.remaining() - wait < TIME_KEPT_FOR_THE_CALL:
                raise _gave_up(error, waited, head) from None
            log.info("IAM does not show the user yet (NoSuchEntity); trying again in %.2fs", wait)
            sleep(wait)
            if caller_gone():  # nobody to create the key for any more
                raise _gave_up(error, time.monotonic() - started, head) from None


def _gave_up(error: ClientError, waited: float, head: str) -> ActionError:
    refusal = translate(error, head)
    longest = resources.schema("input")["properties"]["wait_for_user"]["maximum"]
    refusal.message += (
        f" (waited {waited:.1f}s for IAM to show the user; Wait For A New User allows up to "
        f"{longest} seconds)"
    )
    return refusal
