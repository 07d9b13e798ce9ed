"""The operator's external ID for roles `serve` assumes with its own identity
(--lend-identity assume-role): set by the operator (flag or variable, per role pattern), sent
with sts:AssumeRole, never a caller's, never lent to a caller that brings a key of its own.

STS calls go through the fault proxy, which keeps each request's body: the AssumeRole form
says which ExternalId was sent.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM

CI_ROLE = "arn:aws:iam::123456789012:role/keymaker-ci"
OPS_ROLE = "arn:aws:iam::123456789012:role/keymaker-ops"
LEND = (
    "--lend-identity",
    "assume-role",
    "--allow-role-arn",
    "arn:aws:iam::123456789012:role/keymaker-*",
)


def ambient(iam: LocalIAM, proxy: FaultProxy) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": iam.url,
        "AWS_ENDPOINT_URL_STS": proxy.url,
    }


def external_ids_sent(proxy: FaultProxy, mark: int) -> list[str | None]:
    """The ExternalId of each AssumeRole since `mark` (None where none was sent)."""
    sent = []
    for exchange in proxy.since(mark):
        if exchange.action == "AssumeRole":
            form = parse_qs(exchange.request_body.decode())
            sent.append(form.get("ExternalId", [None])[0])
    return sent


def create(process: PluginProcess, user: str, connection: dict[str, str]) -> Any:
    return process.stub().ExecuteAction(
        execute_request({"user_name": user}, connection), timeout=30
    )


def test_the_operators_external_id_is_sent_per_role_pattern(
    started: list[PluginProcess], iam: LocalIAM, proxy: FaultProxy
) -> None:
    process = PluginProcess(
        *LEND,
        "--role-external-id",
        f"{CI_ROLE}|ci-external-id",
        "--role-external-id",
        "every-other-role-id",
        env=ambient(iam, proxy),
    )
    started.append(process)
    user = iam.new_user()
    mark = proxy.mark()

    for role in (CI_ROLE, OPS_ROLE):
        response = create(process, user, {"role_arn": role, "role_session_name": role[-6:]})
        assert response.error_code == 0, response.error_message

    assert external_ids_sent(proxy, mark) == ["ci-external-id", "every-other-role-id"]
    assert len(iam.key_ids(user)) == 2


def test_the_variable_sets_it_and_a_callers_own_key_never_gets_it(
    started: list[PluginProcess], iam: LocalIAM, proxy: FaultProxy
) -> None:
    process = PluginProcess(
        *LEND,
        env={**ambient(iam, proxy), "IAM_CREATE_ACCESS_KEY_ROLE_EXTERNAL_ID": "from-the-variable"},
    )
    started.append(process)
    user = iam.new_user()
    mark = proxy.mark()

    lent = create(process, user, {"role_arn": CI_ROLE})
    own_key = create(process, user, {**iam.connection(), "role_arn": OPS_ROLE, "endpoint_url": ""})
    callers_id = create(process, user, {"role_arn": CI_ROLE, "external_id": "callers-choice"})

    assert lent.error_code == 0, lent.error_message
    assert own_key.error_code == 0, own_key.error_message
    assert callers_id.error_code == 3
    assert "a caller cannot choose the external ID" in callers_id.error_message
    # The lent role with the operator's ID; the caller's own key assumes its role without it.
    assert external_ids_sent(proxy, mark) == ["from-the-variable", None]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["--role-external-id", "some-id"],
            "--role-external-id goes with --lend-identity assume-role",
        ),
        (
            [*LEND, "--role-external-id", "x"],
            "--role-external-id: give ID or 'PATTERN|ID', the ID 2 to 1224 letters, digits or "
            "_+=,.@:/- (sts:AssumeRole's rule)",
        ),
    ],
    ids=["without-assume-role", "too-short"],
)
def test_a_bad_external_id_setting_is_refused_at_start(
    iam: LocalIAM, proxy: FaultProxy, arguments: list[str], expected: str
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **ambient(iam, proxy),
    }
    completed = run_cli("serve", "--port", "0", *arguments, env=env, timeout=30)
    assert completed.returncode == 2, completed.stderr
    assert expected in completed.stderr
    assert "serving integration_pack.Plugin" not in completed.stderr


def test_the_settings_table_lists_it() -> None:
    completed = run_cli("serve", "--help", env=dict(os.environ))
    assert "--role-external-id [PATTERN|]ID" in completed.stdout
    assert "IAM_CREATE_ACCESS_KEY_ROLE_EXTERNAL_ID" in completed.stdout
