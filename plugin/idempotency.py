"""Exactly once across an engine's retries: which key a token made, remembered in IAM itself.

Engines run a step at least once; CreateAccessKey has no idempotency token. So the action keeps
one on the target user, as an IAM tag: key `iam-create-access-key/` + a hash of the token (the
token itself is not stored), value the key id it made, or `pending:` + IAM's time while a
create is under way. A later attempt with the same token means the engine never received the
answer: the key recorded is one whose secret nobody holds, and it is deleted before the new one
is made; a pending marker means an attempt died between create and record, and the keys made
since the marker's time are its orphans (one is deleted; two are never guessed between).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import limit, reconcile
from .errors import ActionError, Category
from .failures import aws_code, aws_reason
from .request import MAX_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

log = logging.getLogger(__name__)

TAG_PREFIX = "iam-create-access-key/"
PENDING = "pending:"
PERMISSIONS = ("iam:ListUserTags", "iam:TagUser", "iam:UntagUser")
_IAM_TIME = "%Y-%m-%dT%H:%M:%SZ"
ATTEMPT_LIMIT = dt.timedelta(seconds=MAX_TIMEOUT_SECONDS + 60)


def tag_key(token: str) -> str:
    """The tag that remembers `token`'s key: a hash, so the token is not stored."""
    return TAG_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:40]


@dataclasses.dataclass(frozen=True)
class Earlier:
    """What earlier attempts with this token left on the user."""

    tag: str
    recorded: limit.Key | None  # the key an earlier attempt made, if it still exists
    orphans: tuple[limit.Key, ...]  # keys made since an earlier attempt's pending marker
    stale_tags: tuple[str, ...]  # our tags naming keys that no longer exist
    iam_now: dt.datetime  # IAM's clock before anything is created


def look(
    client: IAMClient,
    user_name: str,
    token: str,
    keep_trying: Callable[[Callable[[], Any]], Any],
) -> Earlier:
    """Read the user's tags and keys; `keep_trying` waits for a user IAM does not show yet."""
    tags_answer = keep_trying(lambda: _call("ListUserTags", client.list_user_tags, user_name))
    iam_now = reconcile.iam_clock(tags_answer)
    ours = {
        tag["Key"]: tag["Value"]
        for tag in tags_answer.get("Tags", [])
        if tag["Key"].startswith(TAG_PREFIX)
    }
    keys = limit.keys_of(client, user_name, quietly=False) or []
    by_id = {key.access_key_id: key for key in keys}
    tag = tag_key(token)
    value = ours.get(tag, "")
    recorded = by_id.get(value)
    orphans: tuple[limit.Key, ...] = ()
    since = _pending_since(value) if value.startswith(PENDING) else None
    if since is not None:
        # That attempt created its key within its own time (an hour at most); a key made
        # later is somebody else's.
        until = since + ATTEMPT_LIMIT
        orphans = tuple(key for key in keys if since <= key.created <= until)
    stale = tuple(
        key
        for key, named in ours.items()
        if key != tag and not named.startswith(PENDING) and named not in by_id
    )
    return Earlier(tag, recorded, orphans, stale, iam_now)


def clear_the_way(
    client: IAMClient,
    user_name: str,
    earlier: Earlier,
    head: str,
    forget: Callable[[str], None] | None = None,
) -> str | None:
    """Delete what earlier attempts left, prune stale tags, mark this attempt pending.

    Returns the id of the key deleted in favour of this attempt's, if any; `forget` is given
    that id once the key is gone (its expiry schedule and description go with it).
    """
    replaced = None
    if earlier.recorded is not None:
        replaced = earlier.recorded.access_key_id
    elif len(earlier.orphans) > 1:
        ids = ", ".join(key.access_key_id for key in earlier.orphans)
        raise ActionError(
            f"{head}: an earlier attempt with this idempotency key stopped while creating a key, "
            f"and {len(earlier.orphans)} keys were created since ({ids}); this attempt cannot "
            "tell which is that attempt's, so it deleted none. Delete the key that nobody "
            "received (aws iam delete-access-key), then run again",
            Category.REJECTED,
        )
    elif earlier.orphans:
        replaced = earlier.orphans[0].access_key_id
    if replaced is not None:
        try:
            client.delete_access_key(AccessKeyId=replaced, UserName=user_name)
        except ClientError as error:
            if aws_code(error) != "NoSuchEntity":
                raise
        log.info("deleted key %s: an earlier attempt with this idempotency key made it", replaced)
        if forget is not None:
            forget(replaced)
    if earlier.stale_tags:
        _call("UntagUser", client.untag_user, user_name, TagKeys=list(earlier.stale_tags))
    marker = pending_marker(earlier.iam_now)
    _call("TagUser", client.tag_user, user_name, Tags=[{"Key": earlier.tag, "Value": marker}])
    return replaced


def record(client: IAMClient, user_name: str, earlier: Earlier, key_id: str) -> None:
    """Remember that this token made `key_id`."""
    _call("TagUser", client.tag_user, user_name, Tags=[{"Key": earlier.tag, "Value": key_id}])


def pending_marker(moment: dt.datetime) -> str:
    """The tag value of an attempt under way since `moment` (IAM's clock)."""
    return PENDING + moment.strftime(_IAM_TIME)


def _pending_since(value: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.strptime(value[len(PENDING) :], _IAM_TIME)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.timezone.utc)


def _call(operation: str, method: Callable[..., Any], user_name: str, **arguments: Any) -> Any:
    """One tag call; an AccessDenied names the permission the idempotency key needs."""
    try:
        return method(UserName=user_name, **arguments)
    except ClientError as error:
        if aws_code(error) not in ("AccessDenied", "AccessDeniedException"):
            raise
        raise ActionError(
            f"{aws_reason(error)} (the Idempotency Key needs iam:{operation} on the user, and "
            f"{', '.join(p for p in PERMISSIONS if p != 'iam:' + operation)})",
            Category.REJECTED,
            aws_code=aws_code(error),
        ) from None
