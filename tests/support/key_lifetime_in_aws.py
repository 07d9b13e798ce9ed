"""A key's life in AWS's hands, read back: the expiry schedule, run as AWS would run it, and tags."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
from botocore import xform_name

from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM

ROLE = "arn:aws:iam::123456789012:role/iam-key-expiry"


UNIVERSAL_TARGET = re.compile(r"^arn:aws:scheduler:::aws-sdk:(?P<service>\w+):(?P<action>\w+)$")


def client(iam: LocalIAM, service: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=iam.url,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
    )


def schedule_of(iam: LocalIAM, arn: str) -> dict[str, Any]:
    """GetSchedule of the schedule an ARN names, in the ARN's region."""
    region, name = arn.split(":")[3], arn.rsplit("/", 1)[1]
    found: dict[str, Any] = client(iam, "scheduler", region).get_schedule(Name=name)
    return found


def run_as_aws_would(iam: LocalIAM, schedule: dict[str, Any]) -> None:
    """What EventBridge Scheduler does at the schedule's time: the universal target's service
    and API action, called with the target's Input as its arguments."""
    target = UNIVERSAL_TARGET.fullmatch(schedule["Target"]["Arn"])
    assert target is not None, schedule["Target"]["Arn"]
    operation = target["action"][0].upper() + target["action"][1:]  # deleteAccessKey
    call = getattr(client(iam, target["service"]), xform_name(operation))
    call(**json.loads(schedule["Target"]["Input"]))


def tags_of(iam: LocalIAM, user: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in iam.admin.list_user_tags(UserName=user)["Tags"]}
