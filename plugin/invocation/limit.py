"""At IAM's two-key limit: say which keys are there, or make room by deleting an Inactive one.

Ansible's rotate_keys deletes the oldest key whatever its status; this never deletes an Active
key, which somebody may be signing with right now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plugin.aws import convert
from plugin.aws.client_errors import aws_code
from plugin.contract.errors import ActionError, Category

from .reconcile import user_arguments

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

FAIL = "fail"
DELETE_OLDEST_INACTIVE = "delete_oldest_inactive"


_LISTING_EVENT = "before-parse.iam.ListAccessKeys"
_LISTING_BODY = "iam-create-access-key.listing-body"


@dataclasses.dataclass(frozen=True)
class Key:
    access_key_id: str
    status: str
    created: dt.datetime
    create_date: str  # IAM's own text of `created`, as it sent it

    def describe(self, now: dt.datetime) -> str:
        return f"{self.access_key_id} ({self.status}, {_age(now - self.created)} old)"


def is_limit(error: Exception) -> bool:
    return aws_code(error) == "LimitExceeded"


def make_room(client: IAMClient, user_name: str | None, policy: str, refusal: str) -> str:
    """Delete the oldest Inactive key if the policy allows; return its id, or fail saying
    which keys are there. `refusal` is IAM's LimitExceeded reason to build on (what it is about
    is said before it where the invocation ends)."""
    keys = keys_of(client, user_name)
    if keys is None:
        raise ActionError(refusal, Category.REJECTED, aws_code="LimitExceeded")
    now = dt.datetime.now(dt.timezone.utc)
    listed = "; ".join(key.describe(now) for key in keys)
    oldest = oldest_inactive(keys)
    refusal = refusal if refusal.endswith(".") else refusal + "."
    if policy != DELETE_OLDEST_INACTIVE:
        raise ActionError(
            f"{refusal} The user's keys: {listed}. {_hint(oldest)}",
            Category.REJECTED,
            aws_code="LimitExceeded",
        )
    if oldest is None:
        raise ActionError(
            f"{refusal} The user's keys: {listed}. None is Inactive, and an Active key is never "
            "deleted to make room: deactivate or delete one first",
            Category.REJECTED,
            aws_code="LimitExceeded",
        )
    client.delete_access_key(AccessKeyId=oldest.access_key_id, **user_arguments(user_name))
    return oldest.access_key_id


def _hint(oldest: Key | None) -> str:
    """What the user can do, worded from the keys it really has: the policy is offered only
    when there is an Inactive key for it to delete."""
    if oldest is not None:
        return (
            f"Delete one, or run with at_limit={DELETE_OLDEST_INACTIVE} to let the action "
            f"delete {oldest.access_key_id}, the oldest Inactive key"
        )
    return (
        "None is Inactive, and an Active key is never deleted to make room: delete one that "
        "nobody uses (aws iam delete-access-key), or deactivate it (aws iam update-access-key "
        f"--status Inactive) and run with at_limit={DELETE_OLDEST_INACTIVE}"
    )


def oldest_inactive(keys: list[Key]) -> Key | None:
    """The key the delete_oldest_inactive policy would delete, if any."""
    inactive = [key for key in keys if key.status == "Inactive"]
    return min(inactive, key=lambda key: key.created) if inactive else None


def keys_of(client: IAMClient, user_name: str | None, quietly: bool = True) -> list[Key] | None:
    """The user's keys; None when they cannot be listed (no permission, say) and `quietly`."""
    try:
        listing: dict[str, Any] = client.list_access_keys(**user_arguments(user_name))  # type: ignore[arg-type,assignment]
    except ClientError:
        if not quietly:
            raise
        return None
    texts = convert.create_dates(listing.pop(_LISTING_BODY, b""))
    return [
        Key(
            key["AccessKeyId"],
            key["Status"],
            key["CreateDate"],
            texts.get(key["AccessKeyId"]) or key["CreateDate"].isoformat(),
        )
        for key in listing.get("AccessKeyMetadata", [])
    ]


def _keep_listing_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """botocore hook: keep ListAccessKeys' bytes beside the parsed answer (botocore turns
    CreateDate into a datetime; a person is shown IAM's own text)."""
    if int(response_dict.get("status_code", 500)) < 300:
        customized_response_dict[_LISTING_BODY] = bytes(response_dict["body"])


def keep_listing_bodies(client: IAMClient) -> None:
    """Make `client`'s ListAccessKeys answers carry IAM's raw body (once per client)."""
    client.meta.events.register(_LISTING_EVENT, _keep_listing_body, unique_id=_LISTING_BODY)


def _age(elapsed: dt.timedelta) -> str:
    if elapsed < dt.timedelta(minutes=1):
        return f"{max(0, int(elapsed.total_seconds()))} s"
    if elapsed.days >= 1:
        return f"{elapsed.days} day{'s' if elapsed.days > 1 else ''}"
    hours = elapsed.seconds // 3600
    if hours >= 1:
        return f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{elapsed.seconds // 60} min"
