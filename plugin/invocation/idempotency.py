"""Exactly once across an engine's retries: which key a token made, remembered in IAM itself.

Engines run a step at least once; CreateAccessKey has no idempotency token. So the action keeps
one on the target user, as an IAM tag: key `iam-create-access-key/` + a hash of the token (the
token itself is not stored), value the key id it made, or the lease of the attempt under way
(lease.py). A later attempt with the same token means the engine never received the answer: the
key recorded is one whose secret nobody holds, and it is deleted before the new one is made. An
unexpired lease means an attempt is under way: the later one answers code 4 and touches nothing.
An expired lease means its attempt died (or timed out) between create and record: the keys made
within its time are its orphans (one is deleted; two are never guessed between).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plugin.aws.client_errors import access_denied, aws_code, aws_reason, denied
from plugin.contract.errors import ActionError, Category
from plugin.contract.request import MAX_TIMEOUT_SECONDS
from plugin.runtime.deadline import Deadline

from . import lease, limit, reconcile

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

log = logging.getLogger(__name__)

TAG_PREFIX = "iam-create-access-key/"
PENDING = lease.LEGACY_PENDING
PERMISSIONS = ("iam:ListUserTags", "iam:TagUser", "iam:UntagUser")
_IAM_TIME = "%Y-%m-%dT%H:%M:%SZ"
# The longest an attempt of a version before the lease lived (its marker has no end).
ATTEMPT_LIMIT = dt.timedelta(seconds=MAX_TIMEOUT_SECONDS + 60)


def tag_key(token: str) -> str:
    """The tag that remembers `token`'s key: a hash, so the token is not stored."""
    return TAG_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:40]


@dataclasses.dataclass(frozen=True)
class Earlier:
    """What earlier attempts with this token left on the user."""

    tag: str
    recorded: limit.Key | None  # the key an earlier attempt made, if it still exists
    orphans: tuple[limit.Key, ...]  # keys made within an earlier attempt's lease
    stale_tags: tuple[str, ...]  # our tags naming keys that no longer exist, or dead leases
    iam_now: dt.datetime  # IAM's clock before anything is created
    value: str = ""  # the token's tag value as the look saw it
    other: lease.Lease | None = None  # the lease the look saw (another attempt's)
    looked_at: float = 0.0  # time.monotonic() when the look was sent
    mine: lease.Lease | None = None  # this attempt's lease, once taken


def look(
    client: IAMClient,
    user_name: str,
    token: str,
    keep_trying: Callable[[Callable[[], Any]], Any],
) -> Earlier:
    """Read the user's tags and keys; `keep_trying` waits for a user IAM does not show yet."""
    looked_at = time.monotonic()
    tags_answer = keep_trying(lambda: _call("ListUserTags", client.list_user_tags, user_name))
    iam_now = reconcile.iam_clock(tags_answer)
    ours = _ours(tags_answer)
    keys = limit.keys_of(client, user_name, quietly=False) or []
    by_id = {key.access_key_id: key for key in keys}
    tag = tag_key(token)
    value = ours.get(tag, "")
    other = lease.parse(value)
    recorded = by_id.get(other.replacing if other is not None else value)
    orphans = _made_within(other, keys) if other is not None else ()
    if other is not None and not other.expired(iam_now):
        # An attempt is under way: what it replaces or makes is its own (take() refuses).
        recorded, orphans = None, ()
    stale = tuple(
        key for key, named in ours.items() if key != tag and _stale(named, by_id, keys, iam_now)
    )
    return Earlier(tag, recorded, orphans, stale, iam_now, value, other, looked_at)


def take(client: IAMClient, user_name: str, earlier: Earlier, deadline: Deadline) -> Earlier:
    """Take the token's lease for this attempt, or fail (code 4) touching nothing.

    Another attempt's unexpired lease is left alone. Otherwise this attempt writes its own,
    waits for IAM's writes to settle and reads it back: only the attempt whose lease IAM kept
    goes on. Returns `earlier` with the lease taken (`mine`).
    """
    if earlier.other is not None and not earlier.other.expired(earlier.iam_now):
        raise _busy(earlier.other)
    replacing = _replacing(earlier)
    if earlier.stale_tags:  # other tokens' tags: first, so that the lease finds room among 50
        _call("UntagUser", client.untag_user, user_name, TagKeys=list(earlier.stale_tags))
    mine = lease.new(earlier.iam_now, deadline, replacing)
    _call("TagUser", client.tag_user, user_name, Tags=[{"Key": earlier.tag, "Value": mine.value()}])
    seen, lag = lease.settle(
        lambda: _value(client, user_name, earlier.tag),
        mine,
        earlier.value,
        earlier.looked_at,
        deadline,
    )
    if seen != mine.value():
        other = lease.parse(seen)
        if other is not None and not other.expired(earlier.iam_now):
            raise _busy(other)
        if seen != earlier.value:  # it finished, or failed, meanwhile
            raise ActionError(
                "another attempt with this idempotency key ran at the same time; "
                "retry after it (this attempt created and deleted nothing)",
                Category.TRANSIENT,
            )
        raise ActionError(
            "IAM did not show this attempt's lease on the idempotency key in time, so "
            f"it created and deleted nothing; retry after {_when(mine.until)}",
            Category.TRANSIENT,
        )
    log.info("idempotency key held until %s (IAM showed it after %.3f s)", _when(mine.until), lag)
    return dataclasses.replace(earlier, mine=mine)


def clear_the_way(
    client: IAMClient,
    user_name: str,
    earlier: Earlier,
    forget: Callable[[str], None] | None = None,
) -> str | None:
    """Delete what an earlier attempt with this token left (this attempt holds the lease).

    Returns the id of the key deleted in favour of this attempt's, if any; `forget` is given
    that id once the key is gone (its expiry schedule and description go with it).
    """
    replaced = _replacing(earlier) or None
    if replaced is not None:
        try:
            client.delete_access_key(AccessKeyId=replaced, UserName=user_name)
        except ClientError as error:
            if aws_code(error) != "NoSuchEntity":
                raise
        log.info("deleted key %s: an earlier attempt with this idempotency key made it", replaced)
        if forget is not None:
            forget(replaced)
    return replaced


def record(client: IAMClient, user_name: str, earlier: Earlier, key_id: str) -> None:
    """Remember that this token made `key_id`, if this attempt still holds the lease."""
    confirm(client, user_name, earlier, key_id)
    _call("TagUser", client.tag_user, user_name, Tags=[{"Key": earlier.tag, "Value": key_id}])


def confirm(client: IAMClient, user_name: str, earlier: Earlier, key_id: str) -> None:
    """Raise (code 4) unless the token's tag still shows this attempt's lease or its key: an
    attempt that lost its lease must not hand out a key the new holder may delete."""
    seen = _value(client, user_name, earlier.tag)
    if earlier.mine is None or seen in (earlier.mine.value(), key_id):
        return
    other = lease.parse(seen)
    held = f" (its lease runs until {_when(other.until)})" if other and not other.legacy else ""
    raise ActionError(
        f"another attempt with this idempotency key took it over{held}, so this attempt's key "
        "is not handed out; retry after it",
        Category.TRANSIENT,
    )


@contextlib.contextmanager
def ended_if_it_fails() -> Iterator[Callable[[IAMClient, str, Earlier], None]]:
    """Within the block, a lease handed to the yielded function is ended if the block fails:
    a retry need not wait for the failed attempt's deadline, and still finds its orphan."""
    held: list[tuple[IAMClient, str, Earlier]] = []
    try:
        yield lambda client, user_name, earlier: held.append((client, user_name, earlier))
    except BaseException:
        for taken in held:
            _end(*taken)
        raise


def _end(client: IAMClient, user_name: str, earlier: Earlier) -> None:
    """Mark this attempt's lease ended, if the tag still shows it (best effort): a retry goes
    on at once, and still finds a key this attempt may have left within its window."""
    mine = earlier.mine
    if mine is None:
        return
    try:
        if _value(client, user_name, earlier.tag) != mine.value():
            return
        value = mine.end(lease.iam_time(earlier.iam_now, earlier.looked_at)).value()
        _call("TagUser", client.tag_user, user_name, Tags=[{"Key": earlier.tag, "Value": value}])
    except Exception:  # the lease then runs to its own end: a retry waits, nothing is lost
        log.debug("ending the idempotency key's lease failed", exc_info=True)


def pending_marker(moment: dt.datetime) -> str:
    """The marker a version before the lease left while its attempt was under way."""
    return PENDING + moment.strftime(_IAM_TIME)


def _busy(other: lease.Lease) -> ActionError:
    return ActionError(
        "an attempt with this idempotency key is under way until "
        f"{_when(other.until)}; retry after it (this attempt created and deleted nothing)",
        Category.TRANSIENT,
    )


def _when(moment: dt.datetime) -> str:
    return moment.strftime(_IAM_TIME)


def _replacing(earlier: Earlier) -> str:
    """The key this attempt deletes in favour of its own ("" for none); refuses to guess."""
    if earlier.recorded is not None:
        return earlier.recorded.access_key_id
    if len(earlier.orphans) > 1:
        ids = ", ".join(key.access_key_id for key in earlier.orphans)
        raise ActionError(
            "an earlier attempt with this idempotency key stopped while creating a key, "
            f"and {len(earlier.orphans)} keys were created since ({ids}); this attempt cannot "
            "tell which is that attempt's, so it deleted none. Delete the key that nobody "
            "received (aws iam delete-access-key), then run again",
            Category.REJECTED,
        )
    return earlier.orphans[0].access_key_id if earlier.orphans else ""


def _made_within(held: lease.Lease, keys: list[limit.Key]) -> tuple[limit.Key, ...]:
    """The keys created within a lease's time: that attempt made its key then, if any."""
    until = held.window_end(ATTEMPT_LIMIT)
    return tuple(key for key in keys if held.since <= key.created <= until)


def _stale(
    named: str, by_id: dict[str, limit.Key], keys: list[limit.Key], iam_now: dt.datetime
) -> bool:
    """Another token's tag with nothing left to find: a key id that no longer exists, or a
    lease whose time is over and that left no key (so the user's 50 tags are never used up)."""
    held = lease.parse(named)
    if held is None:
        return named not in by_id
    over = iam_now > held.window_end(ATTEMPT_LIMIT)
    return over and held.replacing not in by_id and not _made_within(held, keys)


def _ours(tags_answer: dict[str, Any]) -> dict[str, str]:
    return {
        tag["Key"]: tag["Value"]
        for tag in tags_answer.get("Tags", [])
        if tag["Key"].startswith(TAG_PREFIX)
    }


def _value(client: IAMClient, user_name: str, tag: str) -> str:
    """The tag's value now ("" when absent)."""
    return _ours(_call("ListUserTags", client.list_user_tags, user_name)).get(tag, "")


def _call(operation: str, method: Callable[..., Any], user_name: str, **arguments: Any) -> Any:
    """One tag call; an AccessDenied names the permission the idempotency key needs, and
    IAM's 50-tag limit says what the tag is for."""
    try:
        return method(UserName=user_name, **arguments)
    except ClientError as error:
        if operation == "TagUser" and aws_code(error) == "LimitExceeded":
            raise ActionError(
                f"{aws_reason(error)} (the Idempotency Key keeps one tag per token on the user, "
                "and IAM allows 50 tags per user: remove one the user does not need)",
                Category.REJECTED,
                aws_code="LimitExceeded",
            ) from None
        if not access_denied(error):
            raise
        raise denied(
            error,
            f"{aws_reason(error)} (the Idempotency Key needs iam:{operation} on the user, and "
            f"{', '.join(p for p in PERMISSIONS if p != 'iam:' + operation)})",
        ) from None
