"""Exactly one key, delivered once, never leaked: the action under injected faults, over HTTP.

For each fault the action runs many times against fresh users, and the server is asked directly
which keys exist: every key that exists was delivered with its secret, or the action failed and
left no key behind (or, where deletion was refused, named exactly the key it left).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time

import pytest

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.custody_figures import CUSTODY_FIGURES
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.local_iam import ADMIN_SECRET, LocalIAM

RUNS = 20
SECRET_IN_XML = re.compile(
    rb"<AccessKeyId>(\w+)</AccessKeyId>.*?<SecretAccessKey>([^<]+)</SecretAccessKey>", re.S
)


def issued(proxy: FaultProxy, mark: int) -> dict[str, str]:
    """Key id to secret, for every key IAM created behind the proxy since `mark`."""
    found = {}
    for exchange in proxy.since(mark):
        if exchange.action == "CreateAccessKey":
            for key_id, secret in SECRET_IN_XML.findall(exchange.upstream_body):
                found[key_id.decode()] = secret.decode()
    return found


def run_action(iam: LocalIAM, proxy: FaultProxy, user: str, timeout: float | None = None) -> dict:  # type: ignore[type-arg]
    request: dict[str, object] = {
        "parameters": {"user_name": user},
        "connection": iam.connection(endpoint_url=proxy.url),
    }
    if timeout is not None:
        request["timeout"] = timeout
    return execute(request)


# fault name: (faults on CreateAccessKey, faults on DeleteAccessKey, timeout, expected outcome)
SCENARIOS: dict[str, tuple[list[Fault], list[Fault], float | None, str]] = {
    "reset-after-iam-acted": ([faults.DROP_AFTER_FORWARD], [], None, "delivered"),
    "500-after-iam-acted": ([faults.ERROR_500_AFTER_FORWARD], [], None, "delivered"),
    "503-after-iam-acted": ([faults.ERROR_503_AFTER_FORWARD], [], None, "delivered"),
    "500-iam-not-reached": ([faults.ERROR_500_WITHOUT_FORWARD], [], None, "delivered"),
    "throttled": ([faults.THROTTLE, faults.THROTTLE], [], None, "delivered"),
    # A 6 s budget reads for 2 s and keeps 2 s to reconcile: the answer held 2.6 s times out,
    # and the retry still has ~1.7 s more than it needs (a 4 s budget left 0.5 s: it failed once
    # on a loaded machine, tried once).
    "held-past-read-timeout": ([faults.hold_after_forward(2.6)], [], 6.0, "delivered"),
    # IAM acted and its answer broke while it was read: cut short, or larger than is read
    "body-cut-after-iam-acted": ([faults.body_broken_after_forward(0)], [], None, "delivered"),
    "body-too-large-after-iam-acted": (
        [faults.answer("300 KB after IAM acted", b" " * 300_000, forward=True)],
        [],
        None,
        "delivered",
    ),
    "reset-every-attempt": ([faults.DROP_AFTER_FORWARD] * 3, [], None, "failed-clean"),
    "reset-and-delete-denied": ([faults.DROP_AFTER_FORWARD], [faults.DENY], None, "failed-named"),
}


@pytest.mark.parametrize("scenario", SCENARIOS.keys())
def test_no_secret_is_lost_under_a_fault(
    iam: LocalIAM, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, scenario: str
) -> None:
    create_faults, delete_faults, timeout, expected = SCENARIOS[scenario]
    created = delivered = orphans = 0
    caplog.set_level(logging.DEBUG)
    for _ in range(RUNS):
        user = iam.new_user()
        proxy.inject("CreateAccessKey", *create_faults)
        proxy.inject("DeleteAccessKey", *delete_faults)
        mark = proxy.mark()

        response = run_action(iam, proxy, user, timeout)

        proxy.clear()
        secrets = issued(proxy, mark)
        on_server = iam.key_ids(user)
        created += len(secrets)
        if expected == "delivered":
            assert response["error_code"] == 0, response["error_message"]
            key = response["result"]["AccessKey"]
            assert on_server == [key["AccessKeyId"]]
            assert secrets[key["AccessKeyId"]] == key["SecretAccessKey"]
            delivered += 1
        elif expected == "failed-clean":
            assert response["error_code"] == 4
            assert "none is left" in response["error_message"]
            assert on_server == []
        else:
            assert response["error_code"] == 4
            assert on_server == list(secrets)  # the one key IAM made, not deleted ...
            assert on_server[0] in response["error_message"]  # ... and named
            assert "aws iam delete-access-key" in response["error_message"]
        orphans += len([key_id for key_id in on_server if response["error_code"]])
        for key_id, secret in secrets.items():
            if response["error_code"] or key_id != response["result"]["AccessKey"]["AccessKeyId"]:
                assert secret not in str(response)
            assert secret not in caplog.text
        assert ADMIN_SECRET not in caplog.text
        caplog.clear()
    CUSTODY_FIGURES.append((scenario, RUNS, created, delivered, orphans))


def test_the_happy_path_is_one_request(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    assert run_action(iam, proxy, user)["error_code"] == 0
    assert [e.action for e in proxy.since(mark)] == ["CreateAccessKey"]


def test_throttling_is_retried_without_reconciling(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.THROTTLE)
    mark = proxy.mark()
    assert run_action(iam, proxy, user)["error_code"] == 0
    assert [e.action for e in proxy.since(mark)] == ["CreateAccessKey", "CreateAccessKey"]


def test_two_candidates_are_both_named_and_neither_deleted(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """A key made by someone else in the call's window: the call cannot tell which is its own.

    The other key is made inside the window on purpose (while IAM answers the call's create),
    so the premise holds however busy the machine is."""
    user = iam.new_user()
    made: list[str] = []

    def another_key() -> None:
        made.append(iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])

    proxy.inject(
        "CreateAccessKey",
        dataclasses.replace(faults.DROP_AFTER_FORWARD, meanwhile=another_key),
    )
    mark = proxy.mark()

    response = run_action(iam, proxy, user)
    (other,) = made

    (orphan,) = issued(proxy, mark)
    assert response["error_code"] == 4
    assert other in response["error_message"]
    assert orphan in response["error_message"]
    assert "deleted none" in response["error_message"]
    assert iam.key_ids(user) == sorted([other, orphan])
    assert not [e for e in proxy.since(mark) if e.action == "DeleteAccessKey"]


def test_the_timeout_bounds_the_whole_invocation(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", *[faults.hold_after_forward(4)] * 3)
    mark = proxy.mark()
    started = time.monotonic()

    response = run_action(iam, proxy, user, timeout=2)

    elapsed = time.monotonic() - started
    assert elapsed < 3.5  # within the 2 s timeout (and margin for a busy machine), not the holds
    assert response["error_code"] == 4
    message = response["error_message"]
    made = issued(proxy, mark)
    left = iam.key_ids(user)
    assert left == []  # every key these attempts made was deleted ...
    assert all(key_id in message for key_id in made), message + str(list(made))  # ... named
    assert "none is left" in message or "no key was created" in message


VALID_BODY = (
    b'<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><CreateAccessKeyResult>'
    b"<AccessKey><UserName>{user}</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>"
    b"<Status>Active</Status><SecretAccessKey>hostile-endpoint-fake-secret</SecretAccessKey>"
    b"</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %s "%s">' % (chr(98 + i).encode(), (b"&%s;" % chr(97 + i).encode()) * 10)
        for i in range(8)
    )
    + b"]><CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>&i;</UserName>"
    b"</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
)
HOSTILE = {
    "malformed-xml": (
        faults.answer("malformed", b"<CreateAccessKeyResponse><oops"),
        "it is not well-formed XML",
    ),
    "entity-expansion": (
        faults.answer("billion laughs", BILLION_LAUGHS),
        "it is not well-formed XML",
    ),
    "wrong-root": (
        faults.answer("wrong root", b"<ListUsersResponse><ListUsersResult/></ListUsersResponse>"),
        "its root element is not CreateAccessKeyResponse",
    ),
    "missing-fields": (
        faults.answer("missing fields", VALID_BODY.replace(b"<Status>Active</Status>", b"")),
        "result.AccessKey.Status: is required",
    ),
    "very-large-body": (
        faults.answer("20 MB", VALID_BODY.replace(b"{user}", b"u" * 20_000_000)),
        "IAM's answer was larger than 256 KiB and was not read",
    ),
    "large-body": (  # below the limit on what is read: read, and refused for what it says
        faults.answer("200 KB", VALID_BODY.replace(b"{user}", b"u" * 200_000)),
        "result.AccessKey.UserName: must be at most 64",
    ),
    "slow-drip": (
        faults.answer("drip", VALID_BODY, drip=0.05),
        "did not arrive in the time allowed",
    ),
}


@pytest.mark.parametrize("fault", HOSTILE.keys())
def test_a_hostile_endpoint_ends_in_a_clear_error_in_bounded_time(
    iam: LocalIAM, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    answer, expected = HOSTILE[fault]
    user = iam.new_user()
    proxy.inject("CreateAccessKey", *[answer] * 3)
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()

    # The step's timeout must leave room to reconcile on a loaded machine (a create, a parse and
    # a ListAccessKeys); 3 s was cut short under load and then reported "may have created".
    response = run_action(iam, proxy, user, timeout=6)

    assert time.monotonic() - started < 7
    assert response["error_code"] == 4
    assert response["result"] is None
    assert expected in response["error_message"]
    assert "no key was created" in response["error_message"]
    assert "hostile-endpoint-fake-secret" not in response["error_message"]
    assert "hostile-endpoint-fake-secret" not in caplog.text
    assert iam.key_ids(user) == []


def test_without_permission_to_list_the_error_says_a_key_may_exist(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.DROP_AFTER_FORWARD)
    proxy.inject("ListAccessKeys", faults.DENY)

    response = run_action(iam, proxy, user)

    assert response["error_code"] == 4
    message = response["error_message"]
    assert "whether IAM created a key could not be checked (AccessDenied" in message
    assert f"aws iam list-access-keys --user-name {user}" in message
    assert len(iam.key_ids(user)) == 1  # the orphan is there, and the message said it may be


@pytest.mark.parametrize("mode", ["run", "execute"])
def test_no_secret_in_debug_output_under_a_fault(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str], mode: str
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.DROP_AFTER_FORWARD)
    env = {**cli_env, "AWS_ENDPOINT_URL_IAM": proxy.url}
    mark = proxy.mark()
    if mode == "run":
        completed = run_cli("run", "--user-name", user, "--debug", env=env)
    else:
        request = {
            "parameters": {"user_name": user},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
        completed = run_cli("execute", "--debug", env=env, stdin=json.dumps(request).encode())

    assert completed.returncode == 0, completed.stderr[-2000:]
    secrets = issued(proxy, mark)
    assert len(secrets) == 2  # the orphan's and the delivered key's
    assert "reconciling" in completed.stderr
    for secret in secrets.values():
        assert secret not in completed.stderr
    assert ADMIN_SECRET not in completed.stderr
    delivered = completed.stdout
    orphan = [key_id for key_id in secrets if key_id not in delivered]
    assert len(orphan) == 1
    assert secrets[orphan[0]] not in delivered
