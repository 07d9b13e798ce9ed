"""Wait until the new key works: sts:GetCallerIdentity signed with it, until STS accepts it.

A new access key is refused for seconds by the services it is meant for (IAM is eventually
consistent), and no SDK has a waiter for it. STS accepting the key is strong evidence that it
has reached AWS's authentication systems; it is not a promise for every service in every region.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from plugin.aws.client_errors import TRANSIENT_CODES, aws_code, aws_reason, http_status
from plugin.aws.clients import USER_AGENT, guard
from plugin.contract.errors import ActionError, Category
from plugin.runtime import key_witness
from plugin.runtime.deadline import (
    Deadline,
    DeadlineExceeded,
    backoff_pauses,
    call_within,
    caller_gone,
    pause,
)

log = logging.getLogger(__name__)

# What STS answers for a key it does not know yet.
NOT_YET_CODES = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId"})
DEFAULT_SECONDS = 60.0  # without a request timeout
TIME_KEPT_TO_DELETE = 5.0  # of a request's timeout, for deleting a key that never worked


def wait_until_usable(
    session: Any,
    key_id: str,
    secret: str,
    signing_region: str,
    endpoint_url: str | None,
    deadline: Deadline,
    sleep: Callable[[float], None] = pause,
) -> dict[str, Any]:
    """Probe until STS accepts the key; {"Arn", "AfterSeconds"}. Raise a TRANSIENT ActionError
    if it is not accepted in time, and let any other refusal through."""
    started = time.monotonic()
    if deadline.enforced:
        window = max(0.0, deadline.remaining() - min(TIME_KEPT_TO_DELETE, deadline.seconds / 3))
    else:
        window = DEFAULT_SECONDS
    probe_deadline = Deadline(window) if deadline.enforced else Deadline.unenforced()
    client = session.create_client(
        "sts",
        region_name=signing_region,
        endpoint_url=endpoint_url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=min(5.0, max(0.5, window / 4)),
            read_timeout=min(10.0, max(0.5, window / 3)),
            user_agent_extra=USER_AGENT,
        ),
    )
    guard(client)
    last = "no answer"
    pauses = backoff_pauses()
    probes = 0
    cut = False
    while True:
        probes += 1
        try:
            identity = call_within(client.get_caller_identity, probe_deadline)
        except ClientError as error:
            if not _not_yet(error):
                raise
            last = aws_reason(error)
        except DeadlineExceeded:
            cut = True  # the window ended during this probe: what STS said last still stands
        except BotoCoreError as error:
            last = type(error).__name__
        else:
            after = round(time.monotonic() - started, 2)
            key_witness.report(key_witness.WAITED_UNTIL_USABLE, after)
            log.info("STS accepted the new key after %.2fs (%d probe(s))", after, probes)
            return {"Arn": identity["Arn"], "AfterSeconds": after}
        waited, wait = time.monotonic() - started, next(pauses)
        if waited + wait > window or caller_gone():
            key_witness.report(key_witness.WAITED_UNTIL_USABLE, waited)
            log.info("STS did not accept the new key: %d probe(s) in %.2fs", probes, waited)
            said = f"last answer: {last}" if last != "no answer" else last
            if cut and last != "no answer":
                said += "; the last probe had no answer in time"
            raise ActionError(
                f"STS did not accept the new key within {waited:.1f}s ({said})",
                Category.TRANSIENT,
            )
        sleep(wait)


def _not_yet(error: ClientError) -> bool:
    """A refusal that means "not yet", or a failure that a later probe may not meet."""
    code = aws_code(error)
    return code in NOT_YET_CODES or code in TRANSIENT_CODES or http_status(error) >= 500
