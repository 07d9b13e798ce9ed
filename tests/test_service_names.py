"""Errors name the service and endpoint they could not reach; the README's local-endpoint recipe
(AWS_ENDPOINT_URL) serves every command and option, run as written.

Each service is sent, by its standard AWS_ENDPOINT_URL_<SERVICE> variable, to a loopback port
nothing listens on, the others to the local endpoint: the error must name that service and URL.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import EndpointConnectionError

from plugin.aws import client_errors, services
from tests.support.cli import run_cli
from tests.support.local_iam import LocalIAM
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.readme_recipes import readme_recipe


@pytest.mark.parametrize(
    ("service", "name"),
    [
        ("iam", "IAM"),
        ("sts", "STS"),
        ("secretsmanager", "Secrets Manager"),
        ("ssm", "SSM"),
        ("scheduler", "EventBridge Scheduler"),
    ],
)
def test_the_name_comes_from_the_service_model(service: str, name: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    assert services.name_of(model) == name


def dead_env(cli_env: dict[str, str], iam: LocalIAM, variable: str) -> tuple[dict[str, str], str]:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**cli_env, "AWS_ENDPOINT_URL": iam.url}
    env.pop("AWS_ENDPOINT_URL_IAM")
    return {**env, variable: dead}, dead


@pytest.mark.parametrize(
    ("variable", "arguments", "expected"),
    [
        (
            "AWS_ENDPOINT_URL_STS",
            ["test-connection"],
            "GetCallerIdentity failed (testing the connection): could not connect to the STS "
            "endpoint {dead}/ (nothing was sent)",
        ),
        (
            "AWS_ENDPOINT_URL_STS",
            ["run", "--user-name", "{user}", "--check-only"],
            'Check Only failed for user "{user}": could not connect to the STS endpoint {dead}/ '
            "(nothing was sent)",
        ),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            ["run", "--user-name", "{user}", "--vault", "secretsmanager:ci/{user}"],
            'Hand Secret To Vault failed for user "{user}", before any key was created: could '
            "not connect to the Secrets Manager endpoint {dead}/ (nothing was sent)",
        ),
        (
            "AWS_ENDPOINT_URL_SSM",
            ["run", "--user-name", "{user}", "--vault", "ssm:/ci/{user}"],
            'Hand Secret To Vault failed for user "{user}", before any key was created: could '
            "not connect to the SSM endpoint {dead}/ (nothing was sent)",
        ),
        (
            "AWS_ENDPOINT_URL_IAM",
            ["run", "--user-name", "{user}"],
            'CreateAccessKey failed for user "{user}": could not connect to the IAM endpoint '
            "{dead}/ (nothing was sent)",
        ),
    ],
    ids=["sts-test-connection", "sts-check-only", "secrets-manager", "ssm", "iam"],
)
def test_an_unreachable_service_is_named_with_its_endpoint(
    iam: LocalIAM, cli_env: dict[str, str], variable: str, arguments: list[str], expected: str
) -> None:
    user = iam.new_user()
    env, dead = dead_env(cli_env, iam, variable)

    completed = run_cli(*(argument.format(user=user) for argument in arguments), env=env)

    assert completed.returncode == 4, completed.stderr
    assert completed.stderr == (
        f"iam-create-access-key: error: {expected.format(user=user, dead=dead)}\n"
    )
    assert iam.key_ids(user) == []


def test_an_unreachable_sts_is_named_when_assuming_a_role(
    iam: LocalIAM, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    env, dead = dead_env(cli_env, iam, "AWS_ENDPOINT_URL_STS")
    role = "arn:aws:iam::123456789012:role/ci"

    completed = run_cli("run", "--user-name", user, "--role-arn", role, env=env)

    assert completed.returncode == 4, completed.stderr
    assert completed.stderr == (
        f'iam-create-access-key: error: CreateAccessKey failed for user "{user}": AssumeRole '
        f"into {role} failed: could not connect to the STS endpoint {dead}/ (nothing was sent)\n"
    )


def test_a_service_added_later_is_named_without_new_code() -> None:
    """EventBridge Scheduler (issue 23's expiry) through a session the action signs with."""
    from plugin.aws import sessions
    from plugin.contract import request

    dead = f"http://127.0.0.1:{free_port()}"
    connection = request.Connection(access_key_id="AKIAEXAMPLE", secret_access_key="x")
    session = sessions.session_for(connection)
    client = session.create_client("scheduler", region_name="us-east-1", endpoint_url=dead)
    with pytest.raises(EndpointConnectionError) as raised:
        client.list_schedules()
    message = client_errors.translate(raised.value, "Expiry").message
    assert message == (
        f"Expiry: could not connect to the EventBridge Scheduler endpoint {dead}/schedules "
        "(nothing was sent)"
    )


def test_the_readme_recipe_serves_every_command_and_option(tmp_path: Path) -> None:
    """Run as written, on a free port instead of 5000 (another helper may hold 5000)."""
    recipe = readme_recipe()
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:5000 " in recipe
    for command in ("test-connection", "--check-only", "--vault secretsmanager:"):
        assert command in recipe
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + recipe.replace(
        "5000", str(free_port())
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    completed = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    outputs = completed.stdout
    assert outputs.count('"UserName": "Bob"') == 3, outputs  # the run, the check, the vault
    assert '"Arn": "arn:aws:sts::123456789012:' in outputs  # test-connection
    assert '"Vault"' in outputs
