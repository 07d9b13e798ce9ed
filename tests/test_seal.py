"""Seal the secret to an age recipient: only the identity's holder can read it, and the clear
secret appears nowhere (stdout, stderr, logs), over HTTP against the local IAM endpoint."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pyrage
import pytest

from plugin import execute
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM
from tests.support.refusals import assert_refused_before_sending


@pytest.fixture
def identity() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


def test_the_sealed_secret_opens_with_the_identity_and_only_there(
    iam: LocalIAM,
    proxy: FaultProxy,
    identity: pyrage.x25519.Identity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user = iam.new_user()
    mark = proxy.mark()

    response = execute(
        {
            "parameters": {"user_name": user, "seal_secret_to": str(identity.to_public())},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )

    assert response["error_code"] == 0, response["error_message"]
    key = response["result"]["AccessKey"]
    assert list(key) == ["AccessKeyId", "CreateDate", "SealedSecretAccessKey", "Status", "UserName"]
    assert key["SealedSecretAccessKey"].startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")
    secret = proxy.issued_secret(mark)
    assert pyrage.decrypt(key["SealedSecretAccessKey"].encode(), [identity]).decode() == secret
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(key["SealedSecretAccessKey"].encode(), [pyrage.x25519.Identity.generate()])
    assert secret not in json.dumps(response)
    assert secret not in caplog.text
    assert iam.key_ids(user) == [key["AccessKeyId"]]


def test_sealed_from_the_cli_leaves_no_clear_secret_anywhere(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str], identity: pyrage.x25519.Identity
) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    env = {**cli_env, "AWS_ENDPOINT_URL_IAM": proxy.url}

    completed = run_cli(
        "run",
        "--user-name",
        user,
        "--seal-secret-to",
        str(identity.to_public()),
        "--debug",
        env=env,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    secret = proxy.issued_secret(mark)
    assert secret not in completed.stdout
    assert secret not in completed.stderr
    sealed = json.loads(completed.stdout)["AccessKey"]["SealedSecretAccessKey"]
    assert pyrage.decrypt(sealed.encode(), [identity]).decode() == secret


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"seal_secret_to": "age1" + "q" * 57}, "parameters.seal_secret_to: must match"),
        (
            {"seal_secret_to": "age1" + "q" * 58},
            "parameters.seal_secret_to: is not a valid age X25519 recipient",
        ),
        (
            {"seal_secret_to": "RECIPIENT", "disable_xml_to_json": True},
            "parameters.seal_secret_to: cannot be combined with parameters.disable_xml_to_json",
        ),
    ],
    ids=["malformed", "bad-checksum", "with-raw-xml"],
)
def test_a_bad_recipient_is_refused_before_anything_is_created(
    iam: LocalIAM,
    proxy: FaultProxy,
    identity: pyrage.x25519.Identity,
    parameters: dict[str, object],
    expected: str,
) -> None:
    if parameters["seal_secret_to"] == "RECIPIENT":
        parameters = {**parameters, "seal_secret_to": str(identity.to_public())}
    assert_refused_before_sending(iam, proxy, parameters, expected)


def test_a_key_that_cannot_be_sealed_is_deleted(
    iam: LocalIAM, identity: pyrage.x25519.Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin.delivery import seal

    def broken(secret: str, recipient: str) -> str:
        raise pyrage.EncryptError("injected")

    monkeypatch.setattr(seal, "seal", broken)
    user = iam.new_user()

    response = execute(
        {
            "parameters": {"user_name": user, "seal_secret_to": str(identity.to_public())},
            "connection": iam.connection(),
        }
    )

    assert response["error_code"] == 1
    assert "could not be sealed (EncryptError)" in response["error_message"]
    assert "was deleted, so nothing is left behind" in response["error_message"]
    assert iam.key_ids(user) == []


@pytest.mark.skipif(shutil.which("age") is None, reason="the age command is not installed here")
def test_the_age_command_opens_it(iam: LocalIAM, tmp_path: Path) -> None:
    key_file = tmp_path / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(key_file)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", key_file.read_text())
    assert recipient
    user = iam.new_user()
    response = execute(
        {
            "parameters": {"user_name": user, "seal_secret_to": recipient.group(0)},
            "connection": iam.connection(),
        }
    )
    sealed = response["result"]["AccessKey"]["SealedSecretAccessKey"]

    opened = subprocess.run(
        ["age", "-d", "-i", str(key_file)], input=sealed.encode(), capture_output=True, check=True
    )

    assert len(opened.stdout) == 40  # an AWS secret access key
    assert opened.stdout.decode() not in json.dumps(response)
