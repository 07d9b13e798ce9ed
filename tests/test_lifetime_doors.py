"""Description, Expires After and the other keys through the other doors: `serve` (a real gRPC
client; the operator's --expiry-role-arn) and the Shuffle app under Shuffle's own SDK (the
worker's IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN), each field a string as those forms send it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from plugin.hosts.shuffle import app
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.key_lifetime_in_aws import ROLE, run_as_aws_would, schedule_of, tags_of
from tests.support.local_iam import LocalIAM
from tests.support.shuffle_app import BuiltApp, authentication, built, chart, standalone

__all__ = ["built"]  # the Shuffle app as its Dockerfile builds it (a fixture)
OPERATORS_ROLE = "arn:aws:iam::123456789012:role/operators-key-expiry"


@pytest.fixture(scope="module")
def server() -> Iterator[PluginProcess]:
    process = PluginProcess("--expiry-role-arn", OPERATORS_ROLE)
    yield process
    process.stop()


def test_serve_takes_the_parameters_by_display_name_and_the_operators_role(
    server: PluginProcess, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    older = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    parameters = {
        "User Name": user,
        "Description": "incident 4711",
        "Expires After": "2h",
        "Report The User's Other Keys": "true",
    }

    response = server.stub().ExecuteAction(
        execute_request(parameters, iam.connection(endpoint_url=proxy.url)), timeout=60
    )

    assert response.error_code == 0, response.error_message
    result = json.loads(response.result)
    key_id = result["AccessKey"]["AccessKeyId"]
    schedule = schedule_of(iam, result["Expires"]["ScheduleArn"])
    assert schedule["Target"]["RoleArn"] == OPERATORS_ROLE
    assert tags_of(iam, user)[key_id] == f"incident 4711 - expires {result['Expires']['At']}"
    assert [other["AccessKeyId"] for other in result["OtherKeys"]] == [older]
    run_as_aws_would(iam, schedule)
    assert iam.key_ids(user) == [older]


def test_a_callers_own_role_wins_over_the_operators(
    server: PluginProcess, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    parameters = {"user_name": user, "expires_after": "15m", "expiry_role_arn": ROLE}

    response = server.stub().ExecuteAction(
        execute_request(parameters, iam.connection(endpoint_url=proxy.url)), timeout=60
    )

    assert response.error_code == 0, response.error_message
    arn = json.loads(response.result)["Expires"]["ScheduleArn"]
    assert schedule_of(iam, arn)["Target"]["RoleArn"] == ROLE


def test_without_the_operators_role_serve_refuses_before_sending(
    started: list[PluginProcess], iam: LocalIAM, proxy: FaultProxy
) -> None:
    process = PluginProcess()
    started.append(process)
    user = iam.new_user()
    mark = proxy.mark()

    response = process.stub().ExecuteAction(
        execute_request(
            {"user_name": user, "expires_after": "8h"}, iam.connection(endpoint_url=proxy.url)
        ),
        timeout=60,
    )

    assert response.error_code == 2
    assert "parameters.expiry_role_arn: needed with parameters.expires_after" in (
        response.error_message
    )
    assert proxy.since(mark) == []


def test_an_operators_role_that_is_not_a_role_arn_stops_serve(cli_env: dict[str, str]) -> None:
    completed = run_cli("serve", "--port", "0", "--expiry-role-arn", "my-role", env=cli_env)

    assert completed.returncode == 2
    assert "--expiry-role-arn my-role: not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)" in (
        completed.stderr
    )


def test_the_shuffle_apps_function_reads_the_workers_expiry_role(
    iam: LocalIAM, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function Shuffle's app.py calls, with the container's environment: the operator's
    variable reaches it (the form has no Expiry Role ARN on this door)."""
    user = iam.new_user()
    environ = {"IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN": OPERATORS_ROLE}
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # the operator's endpoint, read by botocore
    given = {**authentication(), "user_name": user, "expires_after": "1h"}

    result = app.create_access_key(given, environ)

    assert result["success"] is True, result
    arn = result["Expires"]["ScheduleArn"]
    assert schedule_of(iam, arn)["Target"]["RoleArn"] == OPERATORS_ROLE


@pytest.mark.slow
def test_the_shuffle_app_with_the_workers_expiry_role(
    built: BuiltApp,
    iam: LocalIAM,
    proxy: FaultProxy,
) -> None:
    user = iam.new_user()
    given = {
        **authentication(),
        "user_name": user,
        "description": "shuffle workflow",
        "expires_after": "1d",
        "report_other_keys": "true",
    }

    result, output = standalone(
        built, given, **chart(proxy), IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN=OPERATORS_ROLE
    )

    assert result["success"] is True, result
    key_id = result["AccessKey"]["AccessKeyId"]
    schedule = schedule_of(iam, result["Expires"]["ScheduleArn"])
    assert schedule["Target"]["RoleArn"] == OPERATORS_ROLE
    assert json.loads(schedule["Target"]["Input"]) == {"UserName": user, "AccessKeyId": key_id}
    assert tags_of(iam, user) == {key_id: f"shuffle workflow - expires {result['Expires']['At']}"}
    assert result["OtherKeys"] == []
    assert output.count(result["AccessKey"]["SecretAccessKey"]) == 1
