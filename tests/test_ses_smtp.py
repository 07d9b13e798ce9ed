"""The SES SMTP password (v4): AWS's derivation, delivered, sealed and vaulted as a secret."""

from __future__ import annotations

import json
import logging

import boto3
import pyrage
import pytest

from plugin import execute
from plugin.delivery.smtp import ses_smtp_password_v4
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM
from tests.support.refusals import assert_refused_before_sending


# The published vectors of Terraform's AWS provider for the same derivation
# (internal/service/iam/access_key_test.go, TestSESSMTPPasswordFromSecretKeySigV4).
@pytest.mark.parametrize(
    ("region", "secret", "password"),
    [
        ("eu-central-1", "some+secret+key", "BMXhUYlu5Z3gSXVQORxlVa7XPaz91aGWdfHxvkOZdWZ2"),
        ("eu-central-1", "another+secret+key", "BBbphbrQmrKMx42d1N6+C7VINYEBGI5v9VsZeTxwskfh"),
        ("us-west-1", "some+secret+key", "BH+jbMzper5WwlwUar9E1ySBqHa9whi0GPo+sJ0mVYJj"),
        ("us-west-1", "another+secret+key", "BKVmjjMDFk/qqw8EROW99bjCS65PF8WKvK5bSr4Y6EqF"),
    ],
)
def test_the_derivation_is_awss(region: str, secret: str, password: str) -> None:
    assert ses_smtp_password_v4(secret, region) == password


def run(iam: LocalIAM, proxy: FaultProxy, **parameters: object) -> dict:  # type: ignore[type-arg]
    return execute({"parameters": parameters, "connection": iam.connection(endpoint_url=proxy.url)})


def test_the_password_is_derived_from_the_new_secret(
    iam: LocalIAM, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mark = proxy.mark()

    response = run(iam, proxy, user_name=iam.new_user(), ses_smtp_region="eu-west-2")

    assert response["error_code"] == 0, response["error_message"]
    key = response["result"]["AccessKey"]
    secret = proxy.issued_secret(mark)
    assert key["SecretAccessKey"] == secret
    assert key["SesSmtpPasswordV4"] == ses_smtp_password_v4(secret, "eu-west-2")
    assert list(key)[:4] == ["AccessKeyId", "CreateDate", "SecretAccessKey", "SesSmtpPasswordV4"]
    assert key["SesSmtpPasswordV4"] not in caplog.text


def test_sealed_together_with_the_secret(iam: LocalIAM, proxy: FaultProxy) -> None:
    identity = pyrage.x25519.Identity.generate()
    mark = proxy.mark()

    response = run(
        iam,
        proxy,
        user_name=iam.new_user(),
        ses_smtp_region="us-east-1",
        seal_secret_to=str(identity.to_public()),
    )

    assert response["error_code"] == 0, response["error_message"]
    key = response["result"]["AccessKey"]
    assert "SesSmtpPasswordV4" not in key
    assert "SecretAccessKey" not in key
    secret = proxy.issued_secret(mark)
    opened = pyrage.decrypt(key["SealedSesSmtpPasswordV4"].encode(), [identity]).decode()
    assert opened == ses_smtp_password_v4(secret, "us-east-1")
    assert ses_smtp_password_v4(secret, "us-east-1") not in json.dumps(response)


def test_written_into_the_vault_and_absent_from_the_result(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = run(iam, proxy, user_name=user, ses_smtp_region="us-east-1", vault=f"ssm:/c/{user}")

    assert response["error_code"] == 0, response["error_message"]
    assert "SesSmtpPasswordV4" not in response["result"]["AccessKey"]
    ssm = boto3.client(
        "ssm",
        region_name="us-east-1",
        endpoint_url=iam.url,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
    )
    stored = json.loads(
        ssm.get_parameter(Name=f"/c/{user}", WithDecryption=True)["Parameter"]["Value"]
    )
    secret = proxy.issued_secret(mark)
    assert stored == {
        "AccessKeyId": response["result"]["AccessKey"]["AccessKeyId"],
        "SecretAccessKey": secret,
        "SesSmtpPasswordV4": ses_smtp_password_v4(secret, "us-east-1"),
    }


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"ses_smtp_region": "us-east-9"},
            'parameters.ses_smtp_region: "us-east-9" is not a region that botocore lists; '
            'did you mean "us-east-1" or "us-east-2"?',
        ),
        (
            {"regions": "us-east-1", "ses_smtp_region": "cn-north-1"},
            "parameters.ses_smtp_region: cn-north-1 is in partition aws-cn, but the action acts "
            "in partition aws",
        ),
        (
            {"ses_smtp_region": "us-east-1", "disable_xml_to_json": True},
            "parameters.ses_smtp_region: cannot be combined with parameters.disable_xml_to_json",
        ),
        ({"ses_smtp_region": "US East"}, "parameters.ses_smtp_region: must match the pattern"),
    ],
    ids=["unknown", "other-partition", "raw-xml", "not-a-region"],
)
def test_a_bad_region_sends_nothing(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, parameters, expected)


def test_debug_never_shows_the_password(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()

    completed = run_cli(
        "run", "--user-name", user, "--ses-smtp-region", "us-east-1", "--debug", env=cli_env
    )

    assert completed.returncode == 0, completed.stderr
    password = json.loads(completed.stdout)["AccessKey"]["SesSmtpPasswordV4"]
    assert password not in completed.stderr


PARTITION_REFUSAL = (
    "Invalid input: parameters.ses_smtp_region: cn-north-1 is in partition aws-cn, but the "
    "action acts in partition aws; one set of credentials lives in one partition"
)


@pytest.mark.parametrize("home", ["us-east-1", None], ids=["environment-region", "no-region"])
def test_with_every_region_the_smtp_region_is_checked_against_the_partition_used(
    iam: LocalIAM, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, home: str | None
) -> None:
    """Regions `*` and a connection with no region: the partition is the environment's
    default region's, else aws, which the input's own checks cannot know."""
    if home is not None:
        monkeypatch.setenv("AWS_DEFAULT_REGION", home)
    connection = {k: v for k, v in iam.connection(endpoint_url=proxy.url).items() if k != "region"}
    user = iam.new_user()
    mark = proxy.mark()

    response = execute(
        {
            "parameters": {"user_name": user, "regions": "*", "ses_smtp_region": "cn-north-1"},
            "connection": connection,
        }
    )

    assert response["error_code"] == 2, response
    assert response["error_message"] == PARTITION_REFUSAL
    assert proxy.since(mark) == []
    assert iam.key_ids(user) == []


def test_the_command_line_with_the_environments_region(
    iam: LocalIAM, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()

    completed = run_cli("run", "--user-name", user, "--ses-smtp-region", "cn-north-1", env=cli_env)

    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr == f"iam-create-access-key: error: {PARTITION_REFUSAL}\n"
    assert iam.key_ids(user) == []
