"""A key's life beyond its birth, as its parameters say it: how long until it expires, the words
of its description tag, and the input problems of both (no AWS here: request.py checks with it
before anything is sent)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from . import regions

MINIMUM = dt.timedelta(minutes=15)  # below this the schedule could fire before delivery ends
MAXIMUM = dt.timedelta(days=365)  # EventBridge Scheduler's at() is for one-time runs; a year
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
IAM_TIME = "%Y-%m-%dT%H:%M:%SZ"
TAG_VALUE_LIMIT = 256  # IAM's limit on a tag value (TagUser)
_EXPIRES = " - expires "  # only characters IAM accepts in a tag value: no ( ) ; ,
EXPIRY_NOTE_LENGTH = len(_EXPIRES) + len("2026-12-01T23:37:32Z")
DESCRIPTION_WITH_EXPIRY = TAG_VALUE_LIMIT - EXPIRY_NOTE_LENGTH


def duration(text: str) -> dt.timedelta:
    """`30m`, `8h`, `7d` as a timedelta (the text already matches the schema's pattern)."""
    return dt.timedelta(**{_UNITS[text[-1]]: int(text[:-1])})


_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def iam_time(text: str) -> dt.datetime | None:
    """IAM's timestamp text (2015-03-09T18:39:23.411Z) as an aware datetime; None if it is not
    one. By hand: Python 3.10's fromisoformat reads neither `Z` nor three-digit fractions."""
    found = _ISO.fullmatch(text.strip())
    if found is None:
        return None
    moment = dt.datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%S")
    fraction = dt.timedelta(microseconds=round(float("0." + found[2]) * 1e6)) if found[2] else None
    zone = found[3] or "Z"
    offset = (
        dt.timedelta()
        if zone == "Z"
        else (1 if zone[0] == "+" else -1)
        * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    )
    return moment.replace(tzinfo=dt.timezone(offset)) + (fraction or dt.timedelta())


def expiry(created: dt.datetime, text: str) -> dt.datetime:
    """When a key created at `created` expires, rounded up to the whole second (at() has no
    fractions; rounding down would cut the key's life short)."""
    moment = created.astimezone(dt.timezone.utc) + duration(text)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
    return moment


def tag_value(description: str, expires_at: dt.datetime | None) -> str:
    """The description tag's value: the description, and when the key expires if it does."""
    if expires_at is None:
        return description
    return f"{description}{_EXPIRES}{expires_at.strftime(IAM_TIME)}"


def problems(
    given: Mapping[str, Any], selection: regions.RegionSelection, found: list[str]
) -> list[str]:
    """The problems of description, expires_after and expiry_role_arn together (each already
    matches its pattern unless `found` says otherwise)."""
    said = {problem.split(":", 1)[0] for problem in found}
    expires, role = given.get("expires_after"), given.get("expiry_role_arn")
    description = given.get("description")
    out = []
    in_range = (
        not isinstance(expires, str)
        or "parameters.expires_after" in said
        or MINIMUM <= duration(expires) <= MAXIMUM
    )
    if not in_range:
        out.append(
            "parameters.expires_after: must be from 15m to 365d (a number and m, h or d: "
            "30m, 8h, 7d)"
        )
    if isinstance(role, str) and not isinstance(expires, str):
        out.append(
            "parameters.expiry_role_arn: needs parameters.expires_after (the role is what "
            "deletes an expiring key)"
        )
    if isinstance(role, str) and "parameters.expiry_role_arn" not in said:
        out += _partition_problems(role, selection)
    if (
        isinstance(description, str)
        and isinstance(expires, str)
        and len(description) > DESCRIPTION_WITH_EXPIRY
    ):
        out.append(
            f"parameters.description: at most {DESCRIPTION_WITH_EXPIRY} characters with "
            f"parameters.expires_after (the tag also says when the key expires, and IAM keeps "
            f"{TAG_VALUE_LIMIT})"
        )
    return out


def _partition_problems(role: str, selection: regions.RegionSelection) -> list[str]:
    """The role must live in the partition the regions choose: a schedule passes a role of
    its own partition only."""
    if selection.is_all:
        return []
    chosen = regions.partition_of(selection.names[0])
    partition = role.split(":", 2)[1]
    if chosen is None or chosen.name == partition:
        return []
    return [
        f"parameters.expiry_role_arn: a role of partition {partition}, but parameters.regions "
        f"names regions of {chosen.name}"
    ]
