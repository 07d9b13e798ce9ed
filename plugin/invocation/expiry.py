"""Expires After: a one-time EventBridge Scheduler schedule whose target is IAM's DeleteAccessKey,
so that AWS deletes the key at its time whether or not anything of ours still runs.

The schedule uses the universal target (arn:PARTITION:scheduler:::aws-sdk:iam:deleteAccessKey,
AWS's "Using universal targets" guide) with the input {"UserName", "AccessKeyId"}, no flexible
window, and ActionAfterCompletion DELETE (the schedule removes itself once it has run). Its name
is derived from the key id, so a second attempt for the same key finds the first one's schedule
instead of making another (CreateSchedule's ConflictException).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from plugin.aws import clients
from plugin.aws.client_errors import access_denied, aws_code, aws_reason, denied
from plugin.contract import lifetime, regions
from plugin.contract.request import Connection
from plugin.runtime.deadline import Deadline

log = logging.getLogger(__name__)

NAME_PREFIX = "iam-create-access-key-"  # + the key id: 42 of the 64 characters a name may have
GROUP = "default"
_TARGET = "arn:{partition}:scheduler:::aws-sdk:iam:deleteAccessKey"
PERMISSIONS = "scheduler:CreateSchedule, and iam:PassRole on the expiry role"


@dataclasses.dataclass(frozen=True)
class Place:
    """Where and with which role the schedule is made."""

    region: str
    partition: str
    role_arn: str


def place_for(
    home_region: str | None,
    selection: regions.RegionSelection,
    plan: regions.RegionPlan,
    role_arn: str,
) -> Place:
    """Where the key's schedule is made, with the role it runs as."""
    return Place(region_for(home_region, selection, plan), plan.partition, role_arn)


def region_for(
    home_region: str | None, selection: regions.RegionSelection, plan: regions.RegionPlan
) -> str:
    """The scheduler is regional: the connection's region, else the first region of the list
    (else, with `*`, the partition's own region). No role is needed to know it, so a retry
    without Expires After still finds the schedule an earlier attempt made."""
    return home_region or (selection.names[0] if not selection.is_all else plan.signing_region)


def schedule_name(key_id: str) -> str:
    return NAME_PREFIX + key_id


def target_arn(partition: str) -> str:
    return _TARGET.format(partition=partition)


def scheduler_client(
    session: Any, connection: Connection, region: str, deadline: Deadline, tries: int = 3
) -> Any:
    """An EventBridge Scheduler client for `region`: the connection's endpoint_url if it names
    one, else botocore's (AWS_ENDPOINT_URL_SCHEDULER, AWS_ENDPOINT_URL, or the partition's
    scheduler.REGION endpoint), never in clear off loopback. CreateSchedule is safe to retry
    (a name is made once; botocore fills its ClientToken), so botocore's retries stay on
    (`tries`: standard mode's 3, unless a caller only looks in case)."""
    connect, read = clients.timeouts(deadline)
    client = session.create_client(
        "scheduler",
        region_name=region,
        endpoint_url=connection.endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": tries},
            connect_timeout=connect,
            read_timeout=read,
            user_agent_extra=clients.USER_AGENT,
        ),
    )
    clients.guard(client)  # schedules keep to the invocation's time (serve)
    return client


def arguments(
    key_id: str, user_name: str, at: dt.datetime, place: Place, expires_after: str
) -> dict[str, Any]:
    """CreateSchedule's arguments for the key's expiry."""
    return {
        "Name": schedule_name(key_id),
        "GroupName": GROUP,
        "Description": (
            f"Deletes access key {key_id} of IAM user {user_name}: Expires After {expires_after}, "
            "set by iam-create-access-key"
        ),
        "ScheduleExpression": f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "State": "ENABLED",
        "Target": {
            "Arn": target_arn(place.partition),
            "RoleArn": place.role_arn,
            "Input": json.dumps({"UserName": user_name, "AccessKeyId": key_id}),
        },
    }


def schedule(
    client: Any, key_id: str, user_name: str, at: dt.datetime, place: Place, expires_after: str
) -> dict[str, str]:
    """Create the schedule (or find this key's, made by an earlier attempt); return the
    result's Expires: {"At", "ScheduleArn"}."""
    wanted = arguments(key_id, user_name, at, place, expires_after)
    try:
        arn = str(_creating(client, **wanted)["ScheduleArn"])
    except ClientError as error:
        if aws_code(error) != "ConflictException":
            raise
        found = client.get_schedule(Name=wanted["Name"], GroupName=GROUP)
        if found["Target"]["Arn"] != wanted["Target"]["Arn"] or _input_key(found) != key_id:
            raise  # a schedule of that name deletes something else: never taken as ours
        arn, at = str(found["Arn"]), _at_of(found["ScheduleExpression"]) or at
    log.info("key %s expires at %s (schedule %s)", key_id, at.strftime(lifetime.IAM_TIME), arn)
    return {"At": at.strftime(lifetime.IAM_TIME), "ScheduleArn": arn}


def forget(client: Any, key_id: str) -> None:
    """Delete the schedule of a key deleted before its time (none is fine)."""
    try:
        client.delete_schedule(Name=schedule_name(key_id), GroupName=GROUP)
    except ClientError as error:
        if aws_code(error) != "ResourceNotFoundException":
            raise
        return
    log.info("deleted the expiry schedule of key %s", key_id)


def would_schedule(
    user_name: str, now: dt.datetime, place: Place, expires_after: str
) -> dict[str, Any]:
    """Check Only's account of the schedule a run would create (the key id is not known yet)."""
    at = lifetime.expiry(now, expires_after)
    wanted = arguments("NEWKEYID", user_name, at, place, expires_after)
    target = wanted["Target"]
    return {
        "Region": place.region,
        "Name": NAME_PREFIX + "<the new key's id>",
        "ScheduleExpression": wanted["ScheduleExpression"],
        "At": at.strftime(lifetime.IAM_TIME),
        "TargetArn": target["Arn"],
        "RoleArn": target["RoleArn"],
        "Input": {"UserName": user_name, "AccessKeyId": "<the new key's id>"},
    }


def _creating(client: Any, **wanted: Any) -> Any:
    """CreateSchedule; an AccessDenied names what the caller needs."""
    try:
        return client.create_schedule(**wanted)
    except ClientError as error:
        if not access_denied(error):
            raise
        raise denied(
            error,
            f"creating its expiry schedule in {client.meta.region_name}: {aws_reason(error)} "
            f"(Expires After needs {PERMISSIONS})",
        ) from None


def _input_key(found: dict[str, Any]) -> str | None:
    try:
        value = json.loads(found["Target"].get("Input") or "{}")
    except ValueError:
        return None
    return value.get("AccessKeyId") if isinstance(value, dict) else None


def _at_of(expression: str) -> dt.datetime | None:
    """The time of an at(...) expression, in UTC (the schedules made here say UTC)."""
    if not (expression.startswith("at(") and expression.endswith(")")):
        return None
    try:
        moment = dt.datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.timezone.utc)
