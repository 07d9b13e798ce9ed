"""The one place that calls IAM CreateAccessKey: exactly one key, its secret delivered once.

CreateAccessKey has no idempotency token. Failures are therefore of three kinds:
- IAM cannot have acted (the connection never opened; throttling, which IAM rejects before
  acting): wait with backoff and try again;
- IAM may have acted (the connection closed or timed out after sending, a 5xx, an answer that
  cannot be read, no answer in the time left): reconcile first (find the key the call may have
  created and delete it, see reconcile.py), and only then try again;
- IAM refused (NoSuchEntity, LimitExceeded, AccessDenied, ...): report it.
The happy path is one HTTP request.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from plugin.aws import convert
from plugin.aws.client_errors import (
    THROTTLING_CODES,
    NothingCreated,
    aws_code,
    aws_reason,
    http_status,
    may_exist,
    translate,
)
from plugin.aws.clients import AnswerTooLarge
from plugin.contract.errors import ActionError, Category
from plugin.runtime import key_witness
from plugin.runtime.deadline import Deadline, DeadlineExceeded, call_within

from . import reconcile

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MIN_ATTEMPT_SECONDS = 0.25  # an attempt with less time than this is not started
BACKOFF_SECONDS = 0.2
_EVENT = "before-parse.iam.CreateAccessKey"
_RAW_BODY = "iam-create-access-key.raw-body"
# What botocore parses instead of a successful answer: the plugin reads IAM's own bytes itself,
# so botocore need not parse them a second time, nor write the secret to its debug log.
_STAND_IN = b"<CreateAccessKeyResponse><CreateAccessKeyResult/></CreateAccessKeyResponse>"


@dataclasses.dataclass(frozen=True)
class Created:
    """IAM's answer as it sent it, and the checked {"AccessKey": ...} read from it."""

    body: bytes
    document: dict[str, Any]


def _take_raw_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """botocore hook: take a successful answer's bytes before botocore parses them.

    `customized_response_dict` belongs to this very call and is merged into what the call
    returns, so the body travels with its own call even when threads share one client.
    Error answers are left to botocore, which turns them into ClientError.
    """
    if int(response_dict.get("status_code", 500)) < 300:
        body = bytes(response_dict["body"])
        customized_response_dict[_RAW_BODY] = body
        response_dict["body"] = _STAND_IN
        log.debug("CreateAccessKey answered (%d bytes, withheld from the log)", len(body))


def capture_raw_bodies(client: IAMClient) -> None:
    """Make `client` keep CreateAccessKey's raw body (once per client: botocore inspects the
    handler's signature on every registration, 7 us a call)."""
    client.meta.events.register(_EVENT, _take_raw_body, unique_id=_RAW_BODY)


def create_once(client: IAMClient, user_name: str | None) -> bytes:
    """One CreateAccessKey request on a client prepared by `capture_raw_bodies`; IAM's raw
    response body."""
    response: dict[str, Any] = client.create_access_key(  # type: ignore[assignment]
        **reconcile.user_arguments(user_name)
    )
    return bytes(response.pop(_RAW_BODY))


def create_access_key(
    client: IAMClient,
    user_name: str | None,
    deadline: Deadline,
    sleep: Callable[[float], None] = time.sleep,
) -> Created:
    """Create exactly one key within the deadline, or fail saying whether one may exist."""
    removed: list[str] = []
    last: Exception | None = None
    attempts = 0
    reserve = _reconcile_reserve(deadline)
    while attempts < MAX_ATTEMPTS:
        if attempts:
            pause = random.uniform(0, BACKOFF_SECONDS * 2**attempts)  # noqa: S311 (jitter)
            if deadline.remaining() - reserve - pause < MIN_ATTEMPT_SECONDS:
                break  # no time for another attempt and its reconciliation
            log.info(
                "CreateAccessKey attempt %d failed (%s); trying again in %.2fs",
                attempts,
                _ambiguity(last) if last is not None else "no answer",
                pause,
            )
            sleep(pause)
        attempts += 1
        sent_at = time.monotonic()
        try:
            body = call_within(
                lambda: create_once(client, user_name),
                deadline,
                reserve,
                on_late_result=lambda late: _discard_late_key(client, user_name, late),
            )
            return Created(body, convert.access_key_document(body))
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            last = error  # the connection never opened: nothing was sent
        except ClientError as error:
            if aws_code(error) not in THROTTLING_CODES and http_status(error) < 500:
                raise  # IAM refused: report it as it is
            last = error
            if http_status(error) >= 500:
                removed += _reconcile(client, user_name, sent_at, deadline, error, removed)
        except (
            ConnectionClosedError,
            ReadTimeoutError,
            ResponseParserError,
            DeadlineExceeded,
            convert.UnreadableAnswer,
        ) as error:
            last = error
            removed += _reconcile(client, user_name, sent_at, deadline, error, removed)
    raise _gave_up(last, attempts, removed, deadline)


def _reconcile_reserve(deadline: Deadline) -> float:
    """The time kept back from every create attempt, to reconcile after it if need be."""
    return min(5.0, deadline.seconds / 3)


def time_needed(deadline: Deadline) -> float:
    """The least of the deadline an attempt is worth starting with: the attempt's own time and
    what is kept to reconcile after it (a wait for a user stops trying with less left)."""
    return _reconcile_reserve(deadline) + MIN_ATTEMPT_SECONDS


def _reconcile(
    client: IAMClient,
    user_name: str | None,
    sent_at: float,
    deadline: Deadline,
    cause: Exception,
    removed_before: list[str],
) -> list[str]:
    """Remove what an ambiguous failure may have left; fail if that cannot be made sure."""
    what = _ambiguity(cause)
    earlier = _deleted_earlier(removed_before)
    log.info("CreateAccessKey outcome unknown (%s): reconciling", what)
    try:
        orphans = reconcile.find_orphans(client, user_name, sent_at, deadline)
    except ClientError as error:
        if aws_code(error) == "NoSuchEntity" and not removed_before:
            # IAM shows no such user after the try: the try cannot have created a key for it.
            raise NothingCreated(error, what) from None
        raise _unchecked(what, aws_reason(error), earlier, user_name) from None
    except Exception as error:
        why = "no time was left" if isinstance(error, DeadlineExceeded) else aws_reason(error)
        raise _unchecked(what, why, earlier, user_name) from None
    try:
        return reconcile.remove_orphans(client, user_name, orphans, deadline)
    except DeadlineExceeded:
        ids = ", ".join(orphan.access_key_id for orphan in orphans)
        raise ActionError(
            f"{what}; IAM created key {ids}, whose secret nobody received, and deleting "
            f"it did not finish in the time allowed{earlier}. Check whether it still exists and "
            "delete it (aws iam delete-access-key), then run again",
            Category.TRANSIENT,
        ) from None
    except ActionError as error:
        error.within(advice=earlier)  # after what the key's removal says
        raise


def _unchecked(what: str, why: str, earlier: str, user_name: str | None) -> ActionError:
    """The error when IAM may have acted and looking could not tell: the one "may have"."""
    return ActionError(
        f"{what}, and whether IAM created a key could not be checked ({why})",
        Category.TRANSIENT,
        advice=earlier + may_exist(user_name),
    )


def _deleted_earlier(removed: list[str]) -> str:
    if not removed:
        return ""
    return f" (keys that earlier attempts created were deleted: {', '.join(removed)})"


def _gave_up(
    last: Exception | None,
    attempts: int,
    removed: list[str],
    deadline: Deadline,
) -> ActionError:
    """The error after the last attempt: what went wrong, and that nothing is left behind."""
    if last is None:
        what = f"no key could be created within the time allowed ({deadline.seconds:g}s)"
    elif isinstance(last, (EndpointConnectionError, ConnectTimeoutError)) or (
        isinstance(last, ClientError) and aws_code(last) in THROTTLING_CODES
    ):
        return translate(last)
    else:
        tries = "once" if attempts == 1 else f"{attempts} times"
        what = f"{_ambiguity(last)} (tried {tries})"
    if removed:
        left = f"the keys these attempts created were deleted ({', '.join(removed)}); none is left"
    else:
        left = "no key was created"
    return ActionError(f"{what}; {left}", Category.TRANSIENT)


def _ambiguity(error: Exception) -> str:
    """What happened, in words that do not quote the response (it may carry the secret)."""
    if isinstance(error, ReadTimeoutError):
        return "the request was sent but timed out waiting for IAM's answer"
    if isinstance(error, ConnectionClosedError):
        return "the request was sent but the connection was closed before IAM's answer arrived"
    if isinstance(error, DeadlineExceeded):
        return "the request was sent but IAM's answer did not arrive in the time allowed"
    if isinstance(error, AnswerTooLarge):
        return f"IAM's answer {error.why} and was not read"
    if isinstance(error, ResponseParserError):
        return "IAM's answer could not be read (not valid XML)"
    if isinstance(error, convert.UnreadableAnswer):
        return f"IAM's answer could not be read ({error.why})"
    if isinstance(error, ClientError):
        return f"IAM answered {http_status(error)} {aws_code(error)}"
    return type(error).__name__


def _discard_late_key(client: IAMClient, user_name: str | None, body: bytes) -> None:
    """A create that answered after it was given up on: nobody will receive its secret."""
    key_id = convert.key_id_of(body)
    if key_id is None:
        return
    key_witness.report(key_witness.CREATED, key_id)
    try:
        client.delete_access_key(AccessKeyId=key_id, **reconcile.user_arguments(user_name))
        key_witness.report(key_witness.DELETED, key_id)
        log.warning("deleted key %s: IAM created it after the call was given up on", key_id)
    except ClientError as error:
        if aws_code(error) != "NoSuchEntity":  # already deleted by the reconciliation
            key_witness.report(key_witness.LEFT, key_id)
            log.warning("key %s, created after the call was given up on, is left", key_id)
    except Exception:
        key_witness.report(key_witness.LEFT, key_id)
        log.warning("key %s, created after the call was given up on, is left", key_id)
