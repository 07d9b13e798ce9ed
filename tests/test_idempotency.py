"""Exactly once across engine retries: one key per idempotency key, however many attempts.

Against moto (which implements user tags), through the fault proxy that counts what was sent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from plugin import execute
from plugin.invocation import lease
from plugin.invocation.idempotency import pending_marker, tag_key
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_SECRET, LocalIAM
from tests.support.paths import ROOT
from tests.support.refusals import assert_refused_before_sending


def attempt(iam: LocalIAM, proxy: FaultProxy, user: str, token: str, **more: Any) -> dict:  # type: ignore[type-arg]
    return execute(
        {
            "parameters": {"user_name": user, "idempotency_key": token, **more},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )


def actions(proxy: FaultProxy, mark: int) -> list[str]:
    return [exchange.action for exchange in proxy.since(mark)]


def tags(iam: LocalIAM, user: str) -> dict[str, str]:
    listed = iam.admin.list_user_tags(UserName=user)["Tags"]
    return {tag["Key"]: tag["Value"] for tag in listed}


def test_the_same_token_twice_leaves_one_key_and_names_the_one_replaced(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    token = f"run-{uuid.uuid4().hex}/step-2"

    first = attempt(iam, proxy, user, token)
    second = attempt(iam, proxy, user, token)  # the engine never got the first answer

    assert first["error_code"] == second["error_code"] == 0, second["error_message"]
    first_id = first["result"]["AccessKey"]["AccessKeyId"]
    second_id = second["result"]["AccessKey"]["AccessKeyId"]
    assert second["result"]["ReplacedAccessKeyId"] == first_id
    assert "ReplacedAccessKeyId" not in first["result"]
    assert iam.key_ids(user) == [second_id]
    assert tags(iam, user) == {tag_key(token): second_id}
    assert token not in json.dumps(tags(iam, user))  # only a hash of it is stored


def test_different_tokens_make_two_keys(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()

    first = attempt(iam, proxy, user, "run-1/step-1")
    second = attempt(iam, proxy, user, "run-2/step-1")

    ids = sorted(r["result"]["AccessKey"]["AccessKeyId"] for r in (first, second))
    assert iam.key_ids(user) == ids
    assert "ReplacedAccessKeyId" not in second["result"]


def test_a_retry_at_the_two_key_limit_frees_its_own_slot(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    other = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    first = attempt(iam, proxy, user, "t-limit")

    second = attempt(iam, proxy, user, "t-limit")

    assert second["error_code"] == 0, second["error_message"]
    new = second["result"]["AccessKey"]["AccessKeyId"]
    assert iam.key_ids(user) == sorted([other, new])
    assert second["result"]["ReplacedAccessKeyId"] == first["result"]["AccessKey"]["AccessKeyId"]


def test_the_first_attempt_marks_creates_and_records(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = attempt(iam, proxy, user, "t-order")

    assert response["error_code"] == 0, response["error_message"]
    assert actions(proxy, mark) == [
        "ListUserTags",
        "ListAccessKeys",
        "TagUser",  # the lease: a nonce, IAM's time, and this attempt's deadline
        "ListUserTags",  # IAM shows it (moto at once) ...
        "ListUserTags",  # ... and after the settle time it is still this attempt's
        "CreateAccessKey",
        "ListUserTags",  # still held before recording
        "TagUser",  # the key id
        "ListUserTags",  # still held before answering
    ]
    lease = next(e for e in proxy.since(mark) if e.action == "TagUser")
    assert b"lease%3A" in lease.request_body
    key_id = response["result"]["AccessKey"]["AccessKeyId"]
    assert tags(iam, user) == {tag_key("t-order"): key_id}


def test_a_process_killed_while_iam_creates_the_key_leaves_one_key_after_its_lease_expires(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.hold_after_forward(30))
    env = {**cli_env, "AWS_ENDPOINT_URL_IAM": proxy.url}
    arguments = ["run", "--user-name", user, "--idempotency-key", "t-kill"]
    mark = proxy.mark()
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", *arguments, "--timeout", "8"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not any(e.upstream_body for e in proxy.since(mark) if e.action == "CreateAccessKey"):
        assert time.monotonic() < deadline, "the create never reached IAM"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # IAM made the key; its answer is held by the proxy
    process.wait()
    orphan = iam.key_ids(user)
    assert len(orphan) == 1
    until = lease_until(iam, user, "t-kill")

    early = run_cli(*arguments, env=env)  # the dead attempt's lease has not expired yet

    assert early.returncode == 4
    assert early.stderr.strip().endswith(
        f"an attempt with this idempotency key is under way until {until:%Y-%m-%dT%H:%M:%SZ}; "
        "retry after it (this attempt created and deleted nothing)"
    )
    assert iam.key_ids(user) == orphan
    time.sleep(max(0.0, (until - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 1.5)

    completed = run_cli(*arguments, env=env)  # after it: the orphan is found and deleted

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["ReplacedAccessKeyId"] == orphan[0]
    assert iam.key_ids(user) == [result["AccessKey"]["AccessKeyId"]]
    assert tags(iam, user) == {tag_key("t-kill"): result["AccessKey"]["AccessKeyId"]}


def lease_until(iam: LocalIAM, user: str, token: str) -> dt.datetime:
    """When the lease on `token`'s tag expires (it must hold one)."""
    held = lease.parse(tags(iam, user)[tag_key(token)])
    assert held is not None
    assert not held.legacy
    return held.until


def mark_pending(iam: LocalIAM, user: str, token: str, seconds_ago: float) -> None:
    """What an attempt that died while creating its key leaves on the user."""
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    iam.admin.tag_user(
        UserName=user, Tags=[{"Key": tag_key(token), "Value": pending_marker(since)}]
    )


def test_two_keys_since_a_pending_marker_are_never_guessed_between(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    mark_pending(iam, user, "t-two", seconds_ago=60)
    ids = [iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(2)]
    mark = proxy.mark()

    response = attempt(iam, proxy, user, "t-two")

    assert response["error_code"] == 3
    assert "cannot tell which is that attempt's, so it deleted none" in response["error_message"]
    assert all(key_id in response["error_message"] for key_id in ids)
    assert "CreateAccessKey" not in actions(proxy, mark)
    assert iam.key_ids(user) == sorted(ids)


@pytest.mark.parametrize("vault_kind", ["ssm", "secretsmanager"])
def test_with_a_vault_a_retry_returns_the_same_reference_and_creates_nothing(
    iam: LocalIAM, proxy: FaultProxy, vault_kind: str
) -> None:
    user = iam.new_user()
    target = f"{vault_kind}:/ci/{user}"
    mark = proxy.mark()

    first = attempt(iam, proxy, user, "t-vault", vault=target)
    second = attempt(iam, proxy, user, "t-vault", vault=target)

    assert first["error_code"] == second["error_code"] == 0, second["error_message"]
    assert actions(proxy, mark).count("CreateAccessKey") == 1
    assert second["result"]["Vault"] == first["result"]["Vault"]
    assert second["result"]["AccessKey"] == first["result"]["AccessKey"]
    assert "ReplacedAccessKeyId" not in second["result"]
    assert iam.key_ids(user) == [first["result"]["AccessKey"]["AccessKeyId"]]


def test_a_vault_read_back_under_debug_shows_no_secret(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    env = {**cli_env, "AWS_ENDPOINT_URL": proxy.url}
    env.pop("AWS_ENDPOINT_URL_IAM")
    arguments = ["run", "--user-name", user, "--idempotency-key", "t-d", "--vault", f"ssm:/{user}"]
    mark = proxy.mark()

    first = run_cli(*arguments, env=env)
    second = run_cli(*arguments, "--debug", env=env)

    assert first.returncode == second.returncode == 0, second.stderr
    secret = proxy.issued_secret(mark)
    assert "GetParameter" in second.stderr  # the read-back happened, logged ...
    assert secret not in second.stderr  # ... without the secret
    assert ADMIN_SECRET not in second.stderr


def test_a_key_made_long_after_a_pending_marker_is_not_taken_for_its_orphan(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """An attempt that died a day ago made its key within its own hour; today's key is not it."""
    user = iam.new_user()
    mark_pending(iam, user, "t-day", seconds_ago=86400)
    someone_elses = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]

    response = attempt(iam, proxy, user, "t-day")

    assert response["error_code"] == 0, response["error_message"]
    assert "ReplacedAccessKeyId" not in response["result"]
    new = response["result"]["AccessKey"]["AccessKeyId"]
    assert iam.key_ids(user) == sorted([someone_elses, new])


def test_tags_of_keys_that_no_longer_exist_are_pruned(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    gone = attempt(iam, proxy, user, "t-old")["result"]["AccessKey"]["AccessKeyId"]
    iam.admin.delete_access_key(UserName=user, AccessKeyId=gone)
    iam.admin.tag_user(UserName=user, Tags=[{"Key": "team", "Value": "ci"}])

    response = attempt(iam, proxy, user, "t-new")

    new = response["result"]["AccessKey"]["AccessKeyId"]
    assert tags(iam, user) == {"team": "ci", tag_key("t-new"): new}


def test_a_user_iam_does_not_show_yet_is_waited_for_by_the_tag_calls(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("ListUserTags", faults.refuse("NoSuchEntity", 404))
    mark = proxy.mark()

    response = attempt(iam, proxy, user, "t-wait")

    assert response["error_code"] == 0, response["error_message"]
    assert actions(proxy, mark)[:2] == ["ListUserTags", "ListUserTags"]


def test_missing_tag_permission_names_it_and_leaves_no_key(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("TagUser", faults.DENY)
    mark = proxy.mark()

    response = attempt(iam, proxy, user, "t-denied")

    assert response["error_code"] == 3
    assert response["error_message"].startswith(
        f'CreateAccessKey failed for user "{user}": AccessDenied: AccessDenied (the Idempotency '
        "Key needs iam:TagUser on the user, and iam:ListUserTags, iam:UntagUser)"
    )
    assert "CreateAccessKey" not in actions(proxy, mark)
    assert iam.key_ids(user) == []


def test_a_user_at_iams_50_tags_is_told_what_the_tag_is_for_and_gets_no_key(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """moto does not enforce IAM's 50 tags per user: the proxy answers as IAM does."""
    user = iam.new_user()
    proxy.inject("TagUser", faults.refuse("LimitExceeded", 409))
    mark = proxy.mark()

    response = attempt(iam, proxy, user, "t-full")

    assert response["error_code"] == 3
    assert response["error_message"] == (
        f'CreateAccessKey failed for user "{user}": LimitExceeded: LimitExceeded (the '
        "Idempotency Key keeps one tag per token on the user, and IAM allows 50 tags per user: "
        "remove one the user does not need)"
    )
    assert "CreateAccessKey" not in actions(proxy, mark)
    assert iam.key_ids(user) == []


def test_a_refused_record_deletes_the_new_key(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("TagUser", faults.Fault("pass", forward=True), faults.DENY)

    response = attempt(iam, proxy, user, "t-record")

    assert response["error_code"] == 3
    assert "iam:TagUser" in response["error_message"]
    assert response["error_message"].endswith("was deleted, so nothing is left behind")
    assert iam.key_ids(user) == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"user_name": ""}, "parameters.idempotency_key: needs parameters.user_name"),
        (
            {"disable_xml_to_json": "true"},
            "parameters.idempotency_key: cannot be combined with parameters.disable_xml_to_json",
        ),
        ({"idempotency_key": "run 1"}, "parameters.idempotency_key: must match the pattern"),
        ({"idempotency_key": "x" * 65}, "parameters.idempotency_key: must be at most 64"),
    ],
    ids=["no-user", "raw-xml", "space", "too-long"],
)
def test_bad_idempotency_input_sends_nothing(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, {"idempotency_key": "t-1", **parameters}, expected)
