"""Check only (an engine's "test step", Ansible's check mode): what the action would do.

It signs in, lists the user's keys, and says whether a key would be created (and which
Inactive key the at_limit policy would delete to make room, and the expiry schedule and
description tag it would get). It creates and deletes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from plugin.aws import sessions
from plugin.contract import lifetime
from plugin.contract.request import Connection, Parameters
from plugin.runtime.deadline import Deadline

from . import expiry, limit, wait_for_user

if TYPE_CHECKING:
    from botocore.session import Session
    from mypy_boto3_iam import IAMClient

QUOTA = 2  # access keys a user may have


def report(
    session: Session,
    client: IAMClient,
    connection: Connection,
    parameters: Parameters,
    deadline: Deadline,
    expiry_place: expiry.Place | None = None,
) -> dict[str, Any]:
    """{"Check": {...}}: the identity, the user's keys, and what would happen (waiting for a
    user IAM does not show yet, as the create would), with the expiry schedule and the
    description tag a run would make."""
    identity = sessions.sts_client(session, connection).get_caller_identity()["Arn"]
    keys = (
        wait_for_user.retrying_while_missing(
            lambda: limit.keys_of(client, parameters.user_name, quietly=False),
            parameters.user_wait_seconds(),
            deadline,
        )
        or []
    )
    user_name = parameters.user_name or identity.rsplit("/", 1)[-1]
    check: dict[str, Any] = {
        "Identity": identity,
        "UserName": user_name,
        "ExistingKeys": [
            {
                "AccessKeyId": k.access_key_id,
                "Status": k.status,
                "CreateDate": k.create_date,
            }
            for k in keys
        ],
    }
    oldest = limit.oldest_inactive(keys)
    if len(keys) < QUOTA:
        check.update(WouldCreate=True, Reason=f"the user has {len(keys)} of {QUOTA} keys")
    elif parameters.at_limit == limit.DELETE_OLDEST_INACTIVE and oldest is not None:
        check.update(
            WouldCreate=True,
            WouldDelete=oldest.access_key_id,
            Reason="the user has two keys; the oldest Inactive one would be deleted to make room",
        )
    else:
        why = (
            "none is Inactive"
            if parameters.at_limit == limit.DELETE_OLDEST_INACTIVE
            else ("at_limit is fail")
        )
        check.update(WouldCreate=False, Reason=f"the user has two keys and {why}")
    if check["WouldCreate"]:
        check.update(_would_label(user_name, parameters, expiry_place))
    return {"Check": check}


def _would_label(
    user_name: str, parameters: Parameters, expiry_place: expiry.Place | None
) -> dict[str, Any]:
    """The schedule and the tag a run would make for its key (only when it would make one)."""
    check: dict[str, Any] = {}
    at = None
    if parameters.expires_after and expiry_place is not None:
        now = dt.datetime.now(dt.timezone.utc)
        check["WouldSchedule"] = expiry.would_schedule(
            user_name, now, expiry_place, parameters.expires_after
        )
        at = lifetime.expiry(now, parameters.expires_after)
    if parameters.description:
        check["WouldTag"] = {
            "Key": "<the new key's id>",
            "Value": lifetime.tag_value(parameters.description, at),
        }
    return check
