"""After an ambiguous failure, find the key the failed call may have created, and remove it.

CreateAccessKey has no idempotency token, so "did IAM act?" is answered by looking: list the
user's keys and take those whose CreateDate falls in the call's window. The window is judged by
IAM's own clock: the listing's `Date` header, less the time elapsed since the create was sent.
A single candidate is this call's orphan (nobody else holds its secret) and is deleted; two or
more cannot be told apart, and none is touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plugin.aws.client_errors import aws_code
from plugin.contract.errors import ActionError, Category
from plugin.runtime import key_witness
from plugin.runtime.deadline import Deadline, call_within

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Orphan:
    access_key_id: str
    created: dt.datetime


def user_arguments(user_name: str | None) -> dict[str, str]:
    return {"UserName": user_name} if user_name else {}


def find_orphans(
    client: IAMClient, user_name: str | None, sent_at: float, deadline: Deadline
) -> list[Orphan]:
    """The keys created since `sent_at` (time.monotonic() just before the create was sent)."""
    listing: dict[str, Any] = call_within(
        lambda: client.list_access_keys(**user_arguments(user_name)),  # type: ignore[arg-type,return-value]
        deadline,
    )
    elapsed = dt.timedelta(seconds=time.monotonic() - sent_at)
    iam_now = iam_clock(listing)
    # The Date header and CreateDate may both be whole seconds: a key created in the second of
    # the send may read as that second's start, so the window opens at the whole second.
    window_start = (iam_now - elapsed).replace(microsecond=0)
    orphans = [
        Orphan(key["AccessKeyId"], key["CreateDate"])
        for key in listing.get("AccessKeyMetadata", [])
        if key["CreateDate"] >= window_start
    ]
    log.debug("reconcile: %d key(s) created since %s (IAM clock)", len(orphans), window_start)
    return orphans


def iam_clock(listing: dict[str, Any]) -> dt.datetime:
    """IAM's time when it answered the listing (its Date header), else this machine's."""
    header = listing.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if header:
        try:
            return email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            pass
    return dt.datetime.now(dt.timezone.utc)


def remove_orphans(
    client: IAMClient, user_name: str | None, orphans: list[Orphan], deadline: Deadline
) -> list[str]:
    """Delete this call's one orphan; fail (TRANSIENT) naming the keys when that is not safe."""
    if not orphans:
        return []
    ids = ", ".join(orphan.access_key_id for orphan in orphans)
    if len(orphans) > 1:
        raise ActionError(
            f"the request's answer was lost and {len(orphans)} keys were created in its "
            f"window ({ids}); this call cannot tell which is its own, so it deleted none. Delete "
            "the key that nobody received (aws iam delete-access-key), then run again",
            Category.TRANSIENT,
        )
    orphan = orphans[0]
    key_witness.report(key_witness.CREATED, orphan.access_key_id)
    try:
        call_within(
            lambda: client.delete_access_key(
                AccessKeyId=orphan.access_key_id, **user_arguments(user_name)
            ),
            deadline,
        )
    except ClientError as error:
        code = aws_code(error) or "Unknown"
        if code == "NoSuchEntity":  # already gone: nothing is orphaned
            key_witness.report(key_witness.DELETED, orphan.access_key_id)
            return [orphan.access_key_id]
        key_witness.report(key_witness.LEFT, orphan.access_key_id)
        raise ActionError(
            f"the request's answer was lost after IAM created key {orphan.access_key_id}, "
            f"whose secret nobody received, and deleting it failed ({code}). Delete it "
            f"(aws iam delete-access-key --access-key-id {orphan.access_key_id}), then run again",
            Category.TRANSIENT,
            aws_code=code,
        ) from None
    key_witness.report(key_witness.DELETED, orphan.access_key_id)
    log.info("deleted orphan key %s (its secret was never received)", orphan.access_key_id)
    return [orphan.access_key_id]
