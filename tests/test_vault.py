"""Hand the secret to a vault (Secrets Manager, SSM SecureString): read it back; a failed write
leaves no key; the clear secret appears nowhere else."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM
from tests.support.refusals import assert_refused_before_sending


def hand_over(iam: LocalIAM, proxy: FaultProxy, user: str, target: str) -> dict:  # type: ignore[type-arg]
    return execute(
        {
            "parameters": {"user_name": user, "vault": target},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )


@pytest.mark.parametrize("existing", [False, True], ids=["new-secret", "new-version"])
def test_secrets_manager_holds_the_key_and_the_result_only_says_where(
    iam: LocalIAM, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, existing: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    name = f"ci/{uuid.uuid4().hex[:8]}"
    if existing:  # made by an earlier run of the action: a new version of it is written
        earlier = hand_over(iam, proxy, iam.new_user(), f"secretsmanager:{name}")
        assert earlier["error_code"] == 0, earlier["error_message"]
        caplog.clear()
    user = iam.new_user()
    mark = proxy.mark()

    response = hand_over(iam, proxy, user, f"secretsmanager:{name}")
    logged = caplog.text  # before the test itself reads the secret back (botocore logs that)

    assert response["error_code"] == 0, response["error_message"]
    secret = proxy.issued_secret(mark)
    key, where = response["result"]["AccessKey"], response["result"]["Vault"]
    assert "SecretAccessKey" not in key
    stored = iam.client("secretsmanager").get_secret_value(SecretId=name)
    assert json.loads(stored["SecretString"]) == {
        "AccessKeyId": key["AccessKeyId"],
        "SecretAccessKey": secret,
    }
    assert where == {"SecretArn": stored["ARN"], "VersionId": stored["VersionId"]}
    assert secret not in json.dumps(response)
    assert secret not in logged
    tags = iam.client("secretsmanager").describe_secret(SecretId=name)["Tags"]
    assert {"Key": "created-by", "Value": "iam-create-access-key"} in tags


def _put_foreign(iam: LocalIAM, service: str, name: str, tagged_otherwise: bool) -> None:
    """A secret or parameter somebody else made (untagged, or tagged by another tool)."""
    tags = [{"Key": "created-by", "Value": "terraform"}] if tagged_otherwise else []
    if service == "ssm":
        iam.client("ssm").put_parameter(
            Name=name,
            Value="db-password-v1",
            Type="SecureString",
            **({"Tags": tags} if tags else {}),
        )
    else:
        iam.client("secretsmanager").create_secret(
            Name=name, SecretString="db-password-v1", **({"Tags": tags} if tags else {})
        )


def _read_foreign(iam: LocalIAM, service: str, name: str) -> tuple[str, object]:
    if service == "ssm":
        parameter = iam.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
        return parameter["Value"], parameter["Version"]
    secret = iam.client("secretsmanager").get_secret_value(SecretId=name)
    versions = iam.client("secretsmanager").list_secret_version_ids(SecretId=name)["Versions"]
    return secret["SecretString"], len(versions)


@pytest.mark.parametrize("tagged_otherwise", [False, True], ids=["untagged", "another-tools-tag"])
@pytest.mark.parametrize("service", ["ssm", "secretsmanager"])
def test_a_target_the_action_did_not_create_is_refused_before_the_key(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str], service: str, tagged_otherwise: bool
) -> None:
    """ssm:/prod/db/password must never become a version holding the key JSON."""
    name = f"/prod/{uuid.uuid4().hex[:8]}/password"
    _put_foreign(iam, service, name, tagged_otherwise)
    before = _read_foreign(iam, service, name)
    user = iam.new_user()
    mark = proxy.mark()

    response = hand_over(iam, proxy, user, f"{service}:{name}")
    completed = run_cli(
        "run",
        "--user-name",
        user,
        "--vault",
        f"{service}:{name}",
        env={**cli_env, "AWS_ENDPOINT_URL": iam.url},
    )

    assert response["error_code"] == 3
    assert completed.returncode == 3
    refusal = (
        f"parameters.vault: {service}:{name} exists and was not created by this action (it has "
        "no tag created-by=iam-create-access-key); it is never overwritten, so nothing was created"
    )
    assert refusal in response["error_message"]
    assert refusal in completed.stderr
    assert "CreateAccessKey" not in [exchange.action for exchange in proxy.since(mark)]
    assert iam.key_ids(user) == []
    assert _read_foreign(iam, service, name) == before


def test_ssm_securestring_holds_the_key(iam: LocalIAM, proxy: FaultProxy) -> None:
    name = f"/ci/{uuid.uuid4().hex[:8]}"
    user = iam.new_user()
    mark = proxy.mark()

    response = hand_over(iam, proxy, user, f"ssm:{name}")

    assert response["error_code"] == 0, response["error_message"]
    stored = iam.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString"
    assert json.loads(stored["Value"])["SecretAccessKey"] == proxy.issued_secret(mark)
    assert response["result"]["Vault"] == {
        "ParameterName": name,
        "ParameterVersion": stored["Version"],
    }


@pytest.mark.parametrize(
    ("target", "refused"),
    [("ssm:/ci/denied", "PutParameter"), ("secretsmanager:ci/denied-new", "CreateSecret")],
    ids=["ssm", "secrets-manager"],
)
def test_a_failed_write_leaves_no_key(
    iam: LocalIAM, proxy: FaultProxy, target: str, refused: str
) -> None:
    user = iam.new_user()
    proxy.inject(refused, faults.DENY)

    response = hand_over(iam, proxy, user, target)

    assert response["error_code"] == 3
    assert f"writing to {target}: AccessDenied" in response["error_message"]
    assert "was deleted, so nothing is left behind" in response["error_message"]
    assert iam.key_ids(user) == []


def test_no_clear_secret_on_the_terminal_or_in_debug_output(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    env = {**cli_env, "AWS_ENDPOINT_URL": proxy.url, "AWS_ENDPOINT_URL_IAM": proxy.url}
    mark = proxy.mark()

    completed = run_cli(
        "run", "--user-name", user, "--vault", f"ssm:/ci/{uuid.uuid4().hex[:8]}", "--debug", env=env
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    secret = proxy.issued_secret(mark)
    assert secret not in completed.stdout
    assert secret not in completed.stderr
    assert "PutParameter" in completed.stderr  # the debug log is there


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"vault": "s3:bucket/key"}, "parameters.vault: must match"),
        (
            {"vault": "ssm:/x", "disable_xml_to_json": True},
            "parameters.vault: cannot be combined with parameters.disable_xml_to_json",
        ),
        (
            {"vault": "ssm:/x", "seal_secret_to": "age1" + "q" * 58},
            "parameters.vault: cannot be combined with parameters.seal_secret_to",
        ),
    ],
    ids=["unknown-service", "with-raw-xml", "with-seal"],
)
def test_bad_vault_input_sends_nothing(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, parameters, expected)
