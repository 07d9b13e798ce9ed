"""A key's life beyond its birth, against moto's server (IAM and EventBridge Scheduler): the
description as the console reads it, the expiry schedule as AWS would run it, the other keys
with their last use; deliver-or-delete when a schedule or a tag is refused."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from plugin import execute
from plugin.contract import validation
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.key_lifetime_in_aws import ROLE, client, run_as_aws_would, schedule_of, tags_of
from tests.support.local_iam import LocalIAM
from tests.support.refusals import assert_refused_before_sending

AGE_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def run(iam: LocalIAM, proxy: FaultProxy, user: str, **parameters: object) -> dict[str, Any]:
    return execute(
        {
            "parameters": {"user_name": user, **parameters},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )


def schedule_exists(iam: LocalIAM, key_id: str, region: str = "us-east-1") -> bool:
    try:
        client(iam, "scheduler", region).get_schedule(Name=f"iam-create-access-key-{key_id}")
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return False
    return True


def iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# ---- Description -----------------------------------------------------------------------------


def test_the_description_is_the_tag_the_console_reads(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = run(iam, proxy, user, description="Contractor Alice - incident 4711")

    assert response["error_code"] == 0, response["error_message"]
    key_id = response["result"]["AccessKey"]["AccessKeyId"]
    # The console's Description column: the user tag whose key is the access key id.
    assert tags_of(iam, user) == {key_id: "Contractor Alice - incident 4711"}
    assert response["result"]["Description"] == "Contractor Alice - incident 4711"
    assert [e.action for e in proxy.since(mark)] == ["CreateAccessKey", "TagUser"]


def test_a_refused_tag_deletes_the_key(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("TagUser", faults.DENY)

    response = run(iam, proxy, user, description="temporary")

    assert response["error_code"] == 3
    key_id = re.search(r"key (\w+) was deleted", response["error_message"])
    assert key_id is not None
    assert response["error_message"] == (
        f'CreateAccessKey failed for user "{user}": tagging its description: AccessDenied: '
        f"AccessDenied (Description needs iam:TagUser on the user); key {key_id[1]} was "
        "deleted, so nothing is left behind"
    )
    assert iam.key_ids(user) == []


# ---- Expires After ---------------------------------------------------------------------------


def test_the_schedule_deletes_exactly_that_key_when_aws_runs_it(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    older = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]

    response = run(iam, proxy, user, expires_after="8h", expiry_role_arn=ROLE)

    assert response["error_code"] == 0, response["error_message"]
    key, expires = response["result"]["AccessKey"], response["result"]["Expires"]
    created = iso(key["CreateDate"])
    expected_at = dt.datetime.fromtimestamp(
        math.ceil((created + dt.timedelta(hours=8)).timestamp()), dt.timezone.utc
    )
    assert iso(expires["At"]) == expected_at
    schedule = schedule_of(iam, expires["ScheduleArn"])
    assert schedule["Arn"] == expires["ScheduleArn"]
    assert schedule["ScheduleExpression"] == f"at({expected_at:%Y-%m-%dT%H:%M:%S})"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:iam:deleteAccessKey"
    assert schedule["Target"]["RoleArn"] == ROLE
    assert json.loads(schedule["Target"]["Input"]) == {
        "UserName": user,
        "AccessKeyId": key["AccessKeyId"],
    }
    assert sorted(iam.key_ids(user)) == sorted([older, key["AccessKeyId"]])

    run_as_aws_would(iam, schedule)

    assert iam.key_ids(user) == [older]


def test_the_schedule_is_in_the_first_region_without_a_connection_region(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    connection = iam.connection(endpoint_url=proxy.url)
    del connection["region"]

    response = execute(
        {
            "parameters": {
                "user_name": user,
                "regions": "eu-west-2,us-east-1",
                "expires_after": "15m",
                "expiry_role_arn": ROLE,
            },
            "connection": connection,
        }
    )

    assert response["error_code"] == 0, response["error_message"]
    arn = response["result"]["Expires"]["ScheduleArn"]
    assert arn.startswith("arn:aws:scheduler:eu-west-2:")
    assert schedule_of(iam, arn)["ScheduleExpression"].startswith("at(")


def test_the_description_says_when_the_key_expires(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = run(
        iam, proxy, user, description="CI job 42", expires_after="30m", expiry_role_arn=ROLE
    )

    assert response["error_code"] == 0, response["error_message"]
    key_id, at = response["result"]["AccessKey"]["AccessKeyId"], response["result"]["Expires"]["At"]
    assert tags_of(iam, user) == {key_id: f"CI job 42 - expires {at}"}
    # The schedule first (the tag names its time), both before the key is delivered.
    assert [e.action for e in proxy.since(mark)] == ["CreateAccessKey", "CreateSchedule", "TagUser"]


def test_a_refused_schedule_deletes_the_key(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("CreateSchedule", faults.DENY)

    response = run(
        iam, proxy, user, expires_after="8h", expiry_role_arn=ROLE, description="never tagged"
    )

    assert response["error_code"] == 3
    key_id = re.search(r"key (\w+) was deleted", response["error_message"])
    assert key_id is not None
    assert response["error_message"] == (
        f'CreateAccessKey failed for user "{user}": creating its expiry schedule in us-east-1: '
        "AccessDeniedException: AccessDenied (Expires After needs scheduler:CreateSchedule, and "
        f"iam:PassRole on the expiry role); key {key_id[1]} was deleted, so nothing is left "
        "behind"
    )
    assert iam.key_ids(user) == []
    assert tags_of(iam, user) == {}
    assert not schedule_exists(iam, key_id[1])


def test_a_refused_tag_takes_the_schedule_back_with_the_key(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("TagUser", faults.DENY)
    mark = proxy.mark()

    response = run(iam, proxy, user, expires_after="8h", expiry_role_arn=ROLE, description="x")

    assert response["error_code"] == 3
    key_id = re.search(r"key (\w+) was deleted", response["error_message"])
    assert key_id is not None
    assert iam.key_ids(user) == []
    assert not schedule_exists(iam, key_id[1])
    assert [e.action for e in proxy.since(mark)][-2:] == ["DeleteAccessKey", "DeleteSchedule"]


def test_a_missing_role_is_code_2_with_nothing_created(iam: LocalIAM, proxy: FaultProxy) -> None:
    assert_refused_before_sending(
        iam,
        proxy,
        {"expires_after": "8h"},
        MISSING_ROLE,
    )


MISSING_ROLE = (
    "Invalid input: parameters.expiry_role_arn: needed with parameters.expires_after (the role "
    "EventBridge Scheduler deletes the key with): give Expiry Role ARN (run: --expiry-role-arn "
    "ARN; an engine request: parameters.expiry_role_arn). Only an operator sets one for callers "
    "that give none: serve's --expiry-role-arn, or IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN on serve "
    "or the Shuffle app; run and execute read no such setting; nothing was created"
)


def test_run_says_what_it_takes_when_the_role_is_missing(
    iam: LocalIAM, cli_env: dict[str, str]
) -> None:
    """The operator's variable set for `run`, which has no operator: the message says what
    run takes, and names the variable only as an operator's setting."""
    user = iam.new_user()
    env = {**cli_env, "IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN": ROLE}

    completed = run_cli("run", "--user-name", user, "--expires-after", "1h", env=env)

    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr == f"iam-create-access-key: error: {MISSING_ROLE}\n"
    assert iam.key_ids(user) == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"expires_after": "10m", "expiry_role_arn": ROLE},
            "parameters.expires_after: must be from 15m to 365d (a number and m, h or d: 30m, "
            "8h, 7d)",
        ),
        (
            {"expires_after": "366d", "expiry_role_arn": ROLE},
            "parameters.expires_after: must be from 15m to 365d",
        ),
        (
            {"expires_after": "8 hours"},
            "Invalid input: parameters.expires_after: must be a number and m, h or d, in lower "
            "case (30m, 8h, 7d)",
        ),
        (
            {"expires_after": "8H", "expiry_role_arn": ROLE},
            "Invalid input: parameters.expires_after: must be a number and m, h or d, in lower "
            "case (30m, 8h, 7d)",
        ),
        (
            {"expiry_role_arn": ROLE},
            "parameters.expiry_role_arn: needs parameters.expires_after (the role is what "
            "deletes an expiring key)",
        ),
        (
            {"expires_after": "1h", "expiry_role_arn": "arn:aws:iam::123456789012:user/bob"},
            "parameters.expiry_role_arn: must match the pattern",
        ),
        (
            {
                "expires_after": "1h",
                "expiry_role_arn": "arn:aws-cn:iam::123456789012:role/x",
                "regions": "us-east-1",
            },
            "parameters.expiry_role_arn: a role of partition aws-cn, but parameters.regions "
            "names regions of aws",
        ),
        (
            {"description": "x" * 226, "expires_after": "1h", "expiry_role_arn": ROLE},
            "parameters.description: at most 225 characters with parameters.expires_after (the "
            "tag also says when the key expires, and IAM keeps 256)",
        ),
        ({"description": "x" * 257}, "parameters.description: must be at most 256 characters"),
        ({"description": "Alice (contractor)"}, "parameters.description: must match the pattern"),
        (
            {"expires_after": "1h", "expiry_role_arn": ROLE, "disable_xml_to_json": True},
            "parameters.expires_after: cannot be combined with parameters.disable_xml_to_json",
        ),
        (
            {"report_other_keys": True, "disable_xml_to_json": True},
            "parameters.report_other_keys: cannot be combined with parameters.disable_xml_to_json",
        ),
    ],
    ids=[
        "too-short",
        "too-long",
        "not-a-duration",
        "upper-case-unit",
        "role-without-expiry",
        "not-a-role",
        "role-of-another-partition",
        "description-and-expiry-over-256",
        "description-over-256",
        "description-with-characters-iam-refuses",
        "expiry-with-raw-xml",
        "other-keys-with-raw-xml",
    ],
)
def test_bad_input_sends_nothing(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, parameters, expected)


def test_a_description_of_225_characters_fits_beside_the_expiry(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    words = ("a" * 224) + "z"

    response = run(iam, proxy, user, description=words, expires_after="1h", expiry_role_arn=ROLE)

    assert response["error_code"] == 0, response["error_message"]
    (value,) = tags_of(iam, user).values()
    assert len(value) == 256
    assert value.startswith(words + " - expires ")


def test_check_only_reports_the_schedule_and_creates_nothing(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = run(
        iam,
        proxy,
        user,
        check_only=True,
        expires_after="7d",
        expiry_role_arn=ROLE,
        description="on call",
    )

    assert response["error_code"] == 0, response["error_message"]
    check = response["result"]["Check"]
    would = check["WouldSchedule"]
    assert would["Region"] == "us-east-1"
    assert would["TargetArn"] == "arn:aws:scheduler:::aws-sdk:iam:deleteAccessKey"
    assert would["RoleArn"] == ROLE
    assert would["Input"] == {"UserName": user, "AccessKeyId": "<the new key's id>"}
    assert would["ScheduleExpression"] == f"at({iso(would['At']):%Y-%m-%dT%H:%M:%S})"
    in_a_week = iso(would["At"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6, hours=23) < in_a_week <= dt.timedelta(days=7, seconds=1)
    assert check["WouldTag"] == {
        "Key": "<the new key's id>",
        "Value": f"on call - expires {would['At']}",
    }
    actions = [e.action for e in proxy.since(mark)]
    assert not {"CreateAccessKey", "CreateSchedule", "TagUser"} & set(actions)
    assert iam.key_ids(user) == []


def test_check_only_at_the_limit_reports_no_schedule(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    for _ in range(2):
        iam.admin.create_access_key(UserName=user)

    response = run(
        iam, proxy, user, check_only=True, expires_after="7d", expiry_role_arn=ROLE, description="x"
    )

    assert response["error_code"] == 0, response["error_message"]
    check = response["result"]["Check"]
    assert check["WouldCreate"] is False
    assert "WouldSchedule" not in check
    assert "WouldTag" not in check


# ---- Report The User's Other Keys ------------------------------------------------------------


def test_the_other_keys_with_their_last_use(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    old = iam.admin.create_access_key(UserName=user)["AccessKey"]
    boto3.client(
        "sts",
        region_name="eu-west-1",
        endpoint_url=iam.url,
        aws_access_key_id=old["AccessKeyId"],
        aws_secret_access_key=old["SecretAccessKey"],
    ).get_caller_identity()  # the old key is used once, with STS in eu-west-1
    mark = proxy.mark()

    response = run(iam, proxy, user, report_other_keys=True)

    assert response["error_code"] == 0, response["error_message"]
    (other,) = response["result"]["OtherKeys"]
    bodies = b"".join(e.upstream_body for e in proxy.since(mark))
    assert other["AccessKeyId"] == old["AccessKeyId"]
    assert other["Status"] == "Active"
    assert f"<CreateDate>{other['CreateDate']}</CreateDate>".encode() in bodies  # IAM's text
    last = other["LastUsed"]
    assert (last["ServiceName"], last["Region"]) == ("sts", "eu-west-1")
    assert f"<LastUsedDate>{last['LastUsedDate']}</LastUsedDate>".encode() in bodies
    assert old["SecretAccessKey"] not in json.dumps(response)
    actions = [e.action for e in proxy.since(mark)]
    assert actions.index("GetAccessKeyLastUsed") < actions.index("CreateAccessKey")


def test_a_key_never_used_and_a_key_deleted_to_make_room(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    inactive = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    iam.admin.update_access_key(UserName=user, AccessKeyId=inactive, Status="Inactive")
    unused = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]

    response = run(iam, proxy, user, report_other_keys=True, at_limit="delete_oldest_inactive")

    assert response["error_code"] == 0, response["error_message"]
    assert response["result"]["DeletedAccessKeyId"] == inactive
    (other,) = response["result"]["OtherKeys"]
    assert other["AccessKeyId"] == unused
    assert other["LastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}


def test_other_keys_that_cannot_be_read_leave_nothing_created(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    iam.admin.create_access_key(UserName=user)
    proxy.inject("GetAccessKeyLastUsed", faults.DENY)
    mark = proxy.mark()

    response = run(iam, proxy, user, report_other_keys=True)

    assert response["error_code"] == 3
    assert response["error_message"] == (
        f'CreateAccessKey failed for user "{user}": reading the user\'s other keys: '
        "AccessDenied: AccessDenied (Report The User's Other Keys needs iam:ListAccessKeys and "
        "iam:GetAccessKeyLastUsed); nothing was created"
    )
    assert "CreateAccessKey" not in [e.action for e in proxy.since(mark)]
    assert len(iam.key_ids(user)) == 1


# ---- with the other options ------------------------------------------------------------------

LIFE = {"expires_after": "8h", "expiry_role_arn": ROLE, "description": "rotation"}


@pytest.mark.parametrize(
    "option",
    [
        {"seal_secret_to": AGE_RECIPIENT},
        {"vault": "secretsmanager:ci/{unique}"},
        {"vault": "ssm:/ci/{unique}"},
        {"status": "Inactive"},
        {"idempotency_key": "run-{unique}"},
    ],
    ids=["sealed", "secrets-manager", "ssm", "inactive", "idempotency-key"],
)
def test_each_option_with_an_expiry_a_description_and_the_other_keys(
    iam: LocalIAM, proxy: FaultProxy, option: dict[str, str]
) -> None:
    user = iam.new_user()
    older = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    unique = uuid.uuid4().hex[:8]
    given = {name: value.format(unique=unique) for name, value in option.items()}
    mark = proxy.mark()

    response = run(iam, proxy, user, **LIFE, report_other_keys=True, **given)

    assert response["error_code"] == 0, response["error_message"]
    result = response["result"]
    assert validation.problems("output", result, "result") == []  # every field documented
    key_id = result["AccessKey"]["AccessKeyId"]
    if "seal_secret_to" in given or "vault" in given:
        assert proxy.issued_secret(mark) not in json.dumps(result)
    assert [other["AccessKeyId"] for other in result["OtherKeys"]] == [older]
    assert tags_of(iam, user)[key_id] == f"rotation - expires {result['Expires']['At']}"
    schedule = schedule_of(iam, result["Expires"]["ScheduleArn"])
    assert json.loads(schedule["Target"]["Input"])["AccessKeyId"] == key_id
    if "seal_secret_to" in given:
        assert "SecretAccessKey" not in result["AccessKey"]
        assert result["AccessKey"]["SealedSecretAccessKey"].startswith("-----BEGIN AGE")
    if "vault" in given:
        assert "SecretAccessKey" not in result["AccessKey"]
        assert set(result["Vault"]) in (
            {"SecretArn", "VersionId"},
            {"ParameterName", "ParameterVersion"},
        )
    if "status" in given:
        assert result["AccessKey"]["Status"] == "Inactive"
    run_as_aws_would(iam, schedule)
    assert iam.key_ids(user) == [older]


def test_a_replaced_key_takes_its_schedule_and_description_with_it(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """The engine never received the first answer and runs the step again with its token."""
    user = iam.new_user()
    token = f"run-{uuid.uuid4().hex[:8]}/step-3"

    first = run(iam, proxy, user, **LIFE, idempotency_key=token)
    second = run(iam, proxy, user, **LIFE, idempotency_key=token)

    assert first["error_code"] == 0, first["error_message"]
    assert second["error_code"] == 0, second["error_message"]
    lost = first["result"]["AccessKey"]["AccessKeyId"]
    kept = second["result"]["AccessKey"]["AccessKeyId"]
    assert second["result"]["ReplacedAccessKeyId"] == lost
    assert iam.key_ids(user) == [kept]
    assert not schedule_exists(iam, lost)
    assert schedule_exists(iam, kept)
    assert lost not in tags_of(iam, user)
    assert tags_of(iam, user)[kept].startswith("rotation - expires ")


@pytest.mark.parametrize(
    "retried_with",
    [{}, {"description": "rotation"}, {"expires_after": "8h", "expiry_role_arn": ROLE}],
    ids=["neither", "description-only", "expiry-only"],
)
def test_a_replaced_key_takes_its_life_with_it_whatever_the_retry_asks(
    iam: LocalIAM, proxy: FaultProxy, retried_with: dict[str, str]
) -> None:
    """The retry omits Description or Expires After: the replaced key's tag and schedule,
    made by the first attempt, still go with it."""
    user = iam.new_user()
    token = f"run-{uuid.uuid4().hex[:8]}"

    first = run(iam, proxy, user, **LIFE, idempotency_key=token)
    second = run(iam, proxy, user, **retried_with, idempotency_key=token)

    assert first["error_code"] == 0, first["error_message"]
    assert second["error_code"] == 0, second["error_message"]
    lost = first["result"]["AccessKey"]["AccessKeyId"]
    assert second["result"]["ReplacedAccessKeyId"] == lost
    assert not schedule_exists(iam, lost)
    assert lost not in tags_of(iam, user)


def test_a_key_whose_lease_was_lost_takes_its_schedule_and_tag_with_it(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """Another attempt takes the token over while this one makes the key's schedule: the key
    is not handed out, and nothing made for it is left."""
    from plugin.invocation import lease
    from plugin.invocation.idempotency import tag_key

    user, token = iam.new_user(), f"run-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    other = lease.Lease("f" * 16, now, now + dt.timedelta(seconds=60)).value()

    def take_over() -> None:
        iam.admin.tag_user(UserName=user, Tags=[{"Key": tag_key(token), "Value": other}])

    proxy.inject("CreateSchedule", faults.Fault("taken over", forward=True, meanwhile=take_over))
    mark = proxy.mark()

    response = run(iam, proxy, user, **LIFE, idempotency_key=token)

    assert response["error_code"] == 4, response
    assert "so this attempt's key is not handed out" in response["error_message"]
    made = [e for e in proxy.since(mark) if e.action == "CreateAccessKey"]
    key_id = re.search(rb"<AccessKeyId>(\w+)</AccessKeyId>", made[0].upstream_body)
    assert key_id is not None
    assert iam.key_ids(user) == []
    assert not schedule_exists(iam, key_id.group(1).decode())
    assert tags_of(iam, user) == {tag_key(token): other}


def test_a_retry_whose_key_is_in_the_vault_reports_the_same_schedule(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    token = f"run-{uuid.uuid4().hex[:8]}"
    target = f"ssm:/ci/{uuid.uuid4().hex[:8]}"

    first = run(iam, proxy, user, **LIFE, idempotency_key=token, vault=target)
    mark = proxy.mark()
    second = run(iam, proxy, user, **LIFE, idempotency_key=token, vault=target)

    assert first["error_code"] == 0, first["error_message"]
    assert second["error_code"] == 0, second["error_message"]
    assert second["result"]["Expires"] == first["result"]["Expires"]
    assert second["result"]["Vault"] == first["result"]["Vault"]
    assert second["result"]["Description"] == first["result"]["Description"]
    actions = [e.action for e in proxy.since(mark)]
    assert "CreateAccessKey" not in actions
    assert iam.key_ids(user) == [first["result"]["AccessKey"]["AccessKeyId"]]


# ---- the demo --------------------------------------------------------------------------------


def test_the_demo_shows_the_schedule(cli_env: dict[str, str]) -> None:
    completed = run_cli("demo", "--expires-after", "8h", env=cli_env, timeout=120)

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "== Step 3: the expiry schedule (EventBridge Scheduler GetSchedule)" in completed.stdout
    assert '"Arn": "arn:aws:scheduler:::aws-sdk:iam:deleteAccessKey"' in completed.stdout
    assert '"ActionAfterCompletion": "DELETE"' in completed.stdout


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_SCHEDULER", "AWS_ENDPOINT_URL"])
def test_the_local_recipe_reaches_the_scheduler_through_the_environment(
    iam: LocalIAM, cli_env: dict[str, str], variable: str
) -> None:
    """No endpoint_url in the connection: botocore's own variables choose the scheduler's
    endpoint, as they choose IAM's (AWS_ENDPOINT_URL_IAM) and the vault's."""
    user = iam.new_user()
    env = {**cli_env, variable: iam.url}

    completed = run_cli(
        "run", "--user-name", user, "--expires-after", "1h", "--expiry-role-arn", ROLE, env=env
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    schedule = schedule_of(iam, result["Expires"]["ScheduleArn"])
    assert (
        json.loads(schedule["Target"]["Input"])["AccessKeyId"]
        == (result["AccessKey"]["AccessKeyId"])
    )


def test_a_result_withdrawn_takes_its_schedule_and_description_with_its_key(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """What serve does when the caller hung up before the answer reached it."""
    from plugin import engine

    user = iam.new_user()
    request = {
        "parameters": {"user_name": user, **LIFE},
        "connection": iam.connection(endpoint_url=proxy.url),
    }
    response = engine.respond(request)
    assert response.ok, response.error_message
    key_id = response.result["AccessKey"]["AccessKeyId"]
    assert schedule_exists(iam, key_id)

    assert engine.withdraw(request, response) == key_id

    assert iam.key_ids(user) == []
    assert not schedule_exists(iam, key_id)
    assert tags_of(iam, user) == {}


def test_a_description_with_the_raw_xml_mode(iam: LocalIAM, proxy: FaultProxy) -> None:
    """The XML is the create's answer, unchanged; the tag is made all the same (before it is
    returned)."""
    user = iam.new_user()

    response = run(iam, proxy, user, description="raw", disable_xml_to_json=True)

    assert response["error_code"] == 0, response["error_message"]
    assert response["result"].startswith("<CreateAccessKeyResponse")
    (key_id,) = iam.key_ids(user)
    assert f"<AccessKeyId>{key_id}</AccessKeyId>" in response["result"]
    assert tags_of(iam, user) == {key_id: "raw"}


@pytest.mark.parametrize(
    ("created", "after", "expected"),
    [
        ("2015-03-09T18:39:23Z", "8h", "2015-03-10T02:39:23Z"),
        ("2015-03-09T18:39:23.411Z", "30m", "2015-03-09T19:09:24Z"),  # rounded up, never down
        ("2026-12-31T23:50:00.000001Z", "15m", "2027-01-01T00:05:01Z"),
        ("2015-03-09T18:39:23+02:00", "7d", "2015-03-16T16:39:23Z"),
    ],
    ids=["whole-seconds", "milliseconds", "microsecond-past-new-year", "offset"],
)
def test_the_expiry_counts_from_iams_create_date(created: str, after: str, expected: str) -> None:
    from plugin.contract import lifetime

    moment = lifetime.iam_time(created)
    assert moment is not None
    assert f"{lifetime.expiry(moment, after):%Y-%m-%dT%H:%M:%SZ}" == expected
