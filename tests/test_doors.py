"""Every door reads parameters the same way: by name or by display name, a suggestion for a
mistyped name, JSON errors with line and column."""

from __future__ import annotations

import json

from plugin import execute
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM

KNOWN = (
    "regions, user_name, disable_xml_to_json, status, at_limit, seal_secret_to, vault, "
    "check_only, wait_for_user, wait_until_usable, ses_smtp_region, idempotency_key, description, "
    "expires_after, expiry_role_arn, report_other_keys"
)


def test_execute_takes_display_names(iam: LocalIAM) -> None:
    """Issue 26: `{"User Name": ..., "AWS Region(s)": ...}` was "unknown field" in execute."""
    user = iam.new_user()
    response = execute(
        {
            "parameters": {
                "User Name": user,
                "AWS Region(s)": "us-east-1",
                "Status At Creation": "Inactive",
            },
            "connection": iam.connection(),
        }
    )
    assert response["error_code"] == 0, response["error_message"]
    assert response["result"]["AccessKey"]["Status"] == "Inactive"
    assert iam.key_ids(user) == [response["result"]["AccessKey"]["AccessKeyId"]]


def test_executes_stdin_takes_display_names(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()
    request = {"parameters": {"User Name": user, "Check Only": "true"}}

    env = {**cli_env, "AWS_ENDPOINT_URL": cli_env["AWS_ENDPOINT_URL_IAM"]}  # STS too

    completed = run_cli("execute", env=env, stdin=json.dumps(request).encode())

    assert completed.returncode == 0, completed.stdout
    assert json.loads(completed.stdout)["result"]["Check"]["UserName"] == user


def test_a_parameter_named_both_ways_sends_nothing(iam: LocalIAM, proxy: FaultProxy) -> None:
    mark = proxy.mark()
    response = execute(
        {
            "parameters": {"user_name": "bob", "User Name": "alice"},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )
    assert response["error_code"] == 2
    assert response["error_message"] == (
        "Invalid input: parameters.user_name: is given twice (by its name and by its display name)"
    )
    assert proxy.since(mark) == []


def test_a_mistyped_name_gets_a_suggestion(iam: LocalIAM, proxy: FaultProxy) -> None:
    mark = proxy.mark()
    response = execute(
        {"parameters": {"username": "bob"}, "connection": iam.connection(endpoint_url=proxy.url)}
    )
    assert response["error_code"] == 2
    assert response["error_message"] == (
        f"Invalid input: parameters.username: unknown field; did you mean user_name? (known "
        f"fields: {KNOWN})"
    )
    assert proxy.since(mark) == []


def test_several_mistyped_names_each_get_theirs() -> None:
    response = execute({"parameters": {"usr_name": "bob", "regoins": "*", "zzz": "1"}})
    assert response["error_message"] == (
        "Invalid input: parameters.regoins, parameters.usr_name, parameters.zzz: unknown field; "
        f"did you mean regions for regoins, user_name for usr_name? (known fields: {KNOWN})"
    )


def test_a_connection_field_gets_one_too() -> None:
    response = execute({"parameters": {}, "connection": {"endpoint": "http://127.0.0.1:1"}})
    assert response["error_message"].startswith(
        "Invalid input: connection.endpoint: unknown field; did you mean endpoint_url? (known "
        "fields: "
    )
