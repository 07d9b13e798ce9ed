"""Right after "IAM Create User": a user IAM does not show yet, and a key STS does not accept yet.

moto is consistent at once; real IAM is not. The fault proxy plays real IAM's first seconds
(NoSuchEntity for a user just created, InvalidClientTokenId for a key just made) and counts what
was sent, which key signed each probe, and what is left on the server.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM
from tests.support.refusals import assert_refused_before_sending

NO_SUCH_USER = faults.refuse("NoSuchEntity", status=404)
NOT_YET = faults.refuse("InvalidClientTokenId", status=403)


def run(iam: LocalIAM, proxy: FaultProxy, timeout: float | None = None, **parameters: Any) -> dict:  # type: ignore[type-arg]
    request: dict[str, Any] = {
        "parameters": parameters,
        "connection": iam.connection(endpoint_url=proxy.url),
    }
    if timeout is not None:
        request["timeout"] = timeout
    return execute(request)


def actions(proxy: FaultProxy, mark: int) -> list[str]:
    return [exchange.action for exchange in proxy.since(mark)]


def actions_for(proxy: FaultProxy, mark: int, user: str) -> list[str]:
    """One user's requests only: a worker an earlier test gave up on may still reach the shared
    proxy (seen under load: another user's DeleteAccessKey in the middle of a wait)."""
    field = f"UserName={user}".encode()
    return [e.action for e in proxy.since(mark) if field in e.request_body]


# ---- Wait For A New User ------------------------------------------------------------------


def test_a_user_iam_does_not_show_yet_is_waited_for(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", NO_SUCH_USER, NO_SUCH_USER, NO_SUCH_USER)
    mark = proxy.mark()

    response = run(iam, proxy, user_name=user)  # wait_for_user: the default, 10 s

    assert response["error_code"] == 0, response["error_message"]
    assert actions_for(proxy, mark, user) == ["CreateAccessKey"] * 4
    assert iam.key_ids(user) == [response["result"]["AccessKey"]["AccessKeyId"]]


def test_the_wait_ends_and_says_how_long_it_waited(iam: LocalIAM, proxy: FaultProxy) -> None:
    proxy.inject("CreateAccessKey", *[NO_SUCH_USER] * 50)
    mark = proxy.mark()

    response = run(iam, proxy, user_name="not-yet-there", wait_for_user="2")

    assert response["error_code"] == 3
    message = response["error_message"]
    assert message.startswith('CreateAccessKey failed for user "not-yet-there": NoSuchEntity: ')
    waited = float(message.split("(waited ")[1].split("s for IAM")[0])
    assert 1.0 <= waited <= 3.5  # the 2 s window and its last try (slower on a busy machine)
    sent = actions_for(proxy, mark, "not-yet-there")
    assert 3 <= len(sent) <= 8  # backoff, not a busy loop
    assert set(sent) == {"CreateAccessKey"}


def test_wait_zero_is_one_attempt_as_before(iam: LocalIAM, proxy: FaultProxy) -> None:
    proxy.inject("CreateAccessKey", NO_SUCH_USER, NO_SUCH_USER)
    mark = proxy.mark()

    response = run(iam, proxy, user_name=iam.new_user(), wait_for_user=0)

    assert response["error_code"] == 3
    assert "waited" not in response["error_message"]
    assert actions(proxy, mark) == ["CreateAccessKey"]


def test_other_refusals_are_never_tried_again(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.DENY)
    mark = proxy.mark()

    response = run(iam, proxy, user_name=user, wait_for_user=60)

    assert response["error_code"] == 3
    assert "AccessDenied" in response["error_message"]
    assert actions(proxy, mark) == ["CreateAccessKey"]


def test_the_requests_timeout_bounds_the_wait(iam: LocalIAM, proxy: FaultProxy) -> None:
    proxy.inject("CreateAccessKey", *[NO_SUCH_USER] * 50)
    started = time.monotonic()

    response = run(iam, proxy, timeout=2, user_name="not-yet-there", wait_for_user=60)

    assert response["error_code"] == 3
    assert "waited" in response["error_message"]
    assert time.monotonic() - started < 6  # the 2 s timeout (on a busy machine), not 60 s


def test_a_retried_create_after_the_wait_still_makes_one_key(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """The wait and the custody of an ambiguous answer work together."""
    user = iam.new_user()
    proxy.inject("CreateAccessKey", NO_SUCH_USER, faults.DROP_AFTER_FORWARD)

    response = run(iam, proxy, user_name=user)

    assert response["error_code"] == 0, response["error_message"]
    assert iam.key_ids(user) == [response["result"]["AccessKey"]["AccessKeyId"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (61, "parameters.wait_for_user: must be at most 60"),
        ("-1", "parameters.wait_for_user: must be at least 0"),
        ("ten", "parameters.wait_for_user: must be a whole number"),
        (2.5, "parameters.wait_for_user: must be a whole number"),
        (True, "parameters.wait_for_user: must be a whole number"),
    ],
    ids=["too-long", "negative", "words", "fraction", "boolean"],
)
def test_a_bad_wait_sends_nothing(
    iam: LocalIAM, proxy: FaultProxy, value: object, expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, {"wait_for_user": value}, expected)


def test_the_command_line_takes_wait_for_user(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str]
) -> None:
    proxy.inject("CreateAccessKey", NO_SUCH_USER)
    env = {**cli_env, "AWS_ENDPOINT_URL_IAM": proxy.url}
    mark = proxy.mark()

    completed = run_cli("run", "--user-name", "nobody-yet", "--wait-for-user", "0", env=env)

    assert completed.returncode == 3
    assert actions(proxy, mark) == ["CreateAccessKey"]


# ---- Wait Until The Key Works -------------------------------------------------------------


def signed_by(exchange: faults.Exchange) -> str:
    """The access key id in a request's SigV4 Authorization header."""
    return exchange.authorization.split("Credential=")[1].split("/")[0]


def test_the_key_is_probed_with_itself_until_sts_accepts_it(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("GetCallerIdentity", NOT_YET, faults.refuse("SignatureDoesNotMatch"))
    mark = proxy.mark()

    response = run(iam, proxy, user_name=user, wait_until_usable="true")

    assert response["error_code"] == 0, response["error_message"]
    key_id = response["result"]["AccessKey"]["AccessKeyId"]
    usable = response["result"]["Usable"]
    assert usable["Arn"].endswith(f":user/{user}")
    assert usable["AfterSeconds"] > 0
    probes = [e for e in proxy.since(mark) if e.action == "GetCallerIdentity"]
    assert len(probes) == 3
    assert {signed_by(probe) for probe in probes} == {key_id}
    assert actions(proxy, mark).count("CreateAccessKey") == 1
    assert iam.key_ids(user) == [key_id]


def test_a_key_never_accepted_in_time_is_deleted(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("GetCallerIdentity", *[NOT_YET] * 100)

    response = run(iam, proxy, timeout=6, user_name=user, wait_until_usable=True)

    assert response["error_code"] == 4
    message = response["error_message"]
    assert message.startswith(
        f'CreateAccessKey failed for user "{user}": STS did not accept the new key within '
    )
    # the last probe may be cut by the window's end on a loaded machine: STS's answer stands
    assert "(last answer: InvalidClientTokenId: InvalidClientTokenId" in message
    assert message.endswith("was deleted, so nothing is left behind")
    assert response["result"] is None
    assert iam.key_ids(user) == []


def test_without_the_option_nothing_is_probed(iam: LocalIAM, proxy: FaultProxy) -> None:
    mark = proxy.mark()
    response = run(iam, proxy, user_name=iam.new_user())
    assert "Usable" not in response["result"]
    assert actions(proxy, mark) == ["CreateAccessKey"]


def test_the_probe_runs_before_the_secret_goes_to_the_vault(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("GetCallerIdentity", NOT_YET)
    mark = proxy.mark()

    response = run(iam, proxy, user_name=user, wait_until_usable=True, vault=f"ssm:/ci/{user}")

    assert response["error_code"] == 0, response["error_message"]
    sent = actions(proxy, mark)
    assert sent.index("GetCallerIdentity") < sent.index("PutParameter")
    assert "Usable" in response["result"]
    assert "SecretAccessKey" not in response["result"]["AccessKey"]


def test_a_vault_is_not_written_for_a_key_that_never_worked(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("GetCallerIdentity", *[NOT_YET] * 100)
    mark = proxy.mark()

    response = run(iam, proxy, timeout=6, user_name=user, wait_until_usable=True, vault="ssm:/x")

    assert response["error_code"] == 4
    assert "PutParameter" not in actions(proxy, mark)
    assert iam.key_ids(user) == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"wait_until_usable": True, "status": "Inactive"},
            "parameters.wait_until_usable: cannot be combined with parameters.status Inactive",
        ),
        (
            {"wait_until_usable": "true", "disable_xml_to_json": "true"},
            "parameters.wait_until_usable: cannot be combined with parameters.disable_xml_to_json",
        ),
    ],
    ids=["inactive", "raw-xml"],
)
def test_impossible_probes_send_nothing(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, parameters, expected)


def test_the_demo_waits_for_the_user_and_says_so(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_ENDPOINT")}

    completed = run_cli("demo", "--wait-until-usable", env=env)

    assert completed.returncode == 0, completed.stderr
    assert "waits up to 10 s for IAM to show the new user (wait_for_user)" in completed.stdout
    response = json.loads(completed.stdout.split("(engine response)\n")[1].split("\n\n")[0])
    assert response["result"]["Usable"]["Arn"].endswith(response["result"]["AccessKey"]["UserName"])
