"""The demo shows each option at work, says in one line what it shows, and the first command
installs all it needs; `unseal` opens a sealed secret with what the package installs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib

from tests.support.cli import run_cli
from tests.support.local_iam import LocalIAM
from tests.support.paths import ROOT


def responses(stdout: str) -> list[dict]:  # type: ignore[type-arg]
    """Every engine response the demo printed, in order."""
    blocks = re.findall(
        r"== Step 2: IAM Create Access Key \(engine response[^)]*\)\n(.*?)\n\n", stdout, re.DOTALL
    )
    return [json.loads(block) for block in blocks]


def demo(cli_env: dict[str, str], *arguments: str) -> str:
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_ENDPOINT")}
    completed = run_cli("demo", *arguments, env=env)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def test_at_limit_meets_two_keys_one_inactive(cli_env: dict[str, str]) -> None:
    stdout = demo(cli_env, "--at-limit", "delete_oldest_inactive")

    before = stdout.split(
        "== Before step 2: the user already has two keys (IAM's limit), the older one Inactive\n"
    )[1]
    listed = json.loads(before.split("\n\n")[0])["AccessKeyMetadata"]
    inactive = [key["AccessKeyId"] for key in listed if key["Status"] == "Inactive"]
    assert len(listed) == 2
    assert len(inactive) == 1
    (response,) = responses(stdout)
    assert response["result"]["DeletedAccessKeyId"] == inactive[0]
    assert (
        "Shown: --at-limit delete_oldest_inactive: the user had two keys, one Inactive; the step "
        f"deleted that one ({inactive[0]}) to make room, and names it (DeletedAccessKeyId)\n"
    ) in stdout


def test_idempotency_key_runs_the_step_twice_and_shows_the_replaced_key(
    cli_env: dict[str, str],
) -> None:
    stdout = demo(cli_env, "--idempotency-key", "run-1/step-2")

    first, second = responses(stdout)
    made = first["result"]["AccessKey"]["AccessKeyId"]
    assert second["result"]["ReplacedAccessKeyId"] == made
    assert second["result"]["AccessKey"]["AccessKeyId"] != made
    assert (
        "Shown: --idempotency-key: the step ran twice with the same token, as an engine retries "
        "a step whose answer was lost; the second attempt deleted the first's key "
        f"({made}, its secret never received) and names it (ReplacedAccessKeyId): one key per "
        "token\n"
    ) in stdout


def test_the_vault_is_read_back(cli_env: dict[str, str]) -> None:
    stdout = demo(cli_env, "--vault", "ssm:/demo/key")

    (response,) = responses(stdout)
    assert "SecretAccessKey" not in response["result"]["AccessKey"]
    held = json.loads(
        stdout.split("== After step 2: ssm:/demo/key read back\n")[1].split("\n\n")[0]
    )
    assert held == {
        "AccessKeyId": response["result"]["AccessKey"]["AccessKeyId"],
        "SecretAccessKey": "<40 characters>",
    }
    assert (
        "Shown: --vault ssm:/demo/key: the step's result carries a reference and no secret"
        in stdout
    )


def test_report_other_keys_meets_an_older_key_and_says_what_other_keys_shows(
    cli_env: dict[str, str],
) -> None:
    stdout = demo(cli_env, "--report-other-keys")

    before = stdout.split(
        "== Before step 2: the user already has a key (the one a rotation replaces)\n"
    )[1]
    older = json.loads(before.split("\n\n")[0])["AccessKeyId"]
    (response,) = responses(stdout)
    assert [other["AccessKeyId"] for other in response["result"]["OtherKeys"]] == [older]
    assert (
        "Shown: --report-other-keys: the result lists the user's other keys, not the new one "
        f"(OtherKeys: {older}, Active, last used: never): what the next step of a rotation "
        "deactivates or deletes\n"
    ) in stdout


def test_the_description_is_read_back_as_the_console_reads_it(cli_env: dict[str, str]) -> None:
    stdout = demo(cli_env, "--description", "ci runner")

    (response,) = responses(stdout)
    key_id = response["result"]["AccessKey"]["AccessKeyId"]
    read_back = stdout.split(
        f"== After step 2: the user's tag {key_id} (IAM ListUserTags, as the console reads it)\n"
    )[1]
    assert json.loads(read_back.split("\n\n")[0]) == [{"Key": key_id, "Value": "ci runner"}]
    assert (
        f'Shown: --description: the IAM console shows "ci runner" as the description of key '
        f"{key_id}: the user's tag named by the key id (read back above)\n"
    ) in stdout


def test_a_sealed_secret_is_opened_with_an_identity_unseal_made(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    identity = tmp_path / "demo.key"
    made = run_cli("unseal", "--new-identity", str(identity), env=cli_env)
    assert made.returncode == 0, made.stderr
    recipient = made.stdout.strip()
    assert re.fullmatch(r"age1[0-9a-z]{58}", recipient)
    assert identity.stat().st_mode & 0o777 == 0o600

    stdout = demo(cli_env, "--seal-secret-to", recipient, "--identity", str(identity))

    assert (
        f"After step 2: unseal --identity {identity} opened SealedSecretAccessKey: a "
        "40-character secret access key (not shown here)\n"
    ) in stdout
    assert "Shown: --seal-secret-to: the result carries SealedSecretAccessKey" in stdout


@pytest.mark.parametrize("door", ["run", "execute"])
def test_unseal_opens_a_steps_result_to_the_secret_iam_issued(
    iam: LocalIAM, cli_env: dict[str, str], tmp_path: Path, door: str
) -> None:
    """run prints the result; execute prints its whole response, which unseal takes too."""
    identity = tmp_path / "key.txt"
    recipient = run_cli("unseal", "--new-identity", str(identity), env=cli_env).stdout.strip()
    user = iam.new_user()
    mark = iam.mark()
    if door == "run":
        sealed = run_cli("run", "--user-name", user, "--seal-secret-to", recipient, env=cli_env)
    else:
        request = {"parameters": {"user_name": user, "seal_secret_to": recipient}}
        sealed = run_cli("execute", env=cli_env, stdin=json.dumps(request).encode())
        assert '"error_code": 0' in sealed.stdout, sealed.stdout
    assert sealed.returncode == 0, sealed.stderr
    (created,) = [e for e in iam.since(mark) if e.action == "CreateAccessKey"]
    issued = re.search(rb"<SecretAccessKey>([^<]+)</SecretAccessKey>", created.body)
    assert issued is not None

    opened = run_cli(
        "unseal", "--identity", str(identity), env=cli_env, stdin=sealed.stdout.encode()
    )

    assert opened.returncode == 0, opened.stderr
    key = json.loads(opened.stdout)["AccessKey"]
    assert key["SecretAccessKey"] == issued.group(1).decode()
    assert "SealedSecretAccessKey" not in key


def test_unseal_with_another_identity_says_so(cli_env: dict[str, str], tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine.txt", tmp_path / "theirs.txt"
    recipient = run_cli("unseal", "--new-identity", str(mine), env=cli_env).stdout.strip()
    run_cli("unseal", "--new-identity", str(theirs), env=cli_env)
    import pyrage

    sealed = pyrage.encrypt(b"x" * 40, [pyrage.x25519.Recipient.from_str(recipient)], armored=True)

    opened = run_cli("unseal", "--identity", str(theirs), env=cli_env, stdin=sealed)

    assert opened.returncode == 3
    assert opened.stderr == (
        "iam-create-access-key: error: unseal: it cannot be opened with this identity (sealed "
        "to another recipient, or not age text)\n"
    )
    again = run_cli("unseal", "--new-identity", str(mine), env=cli_env)
    assert again.returncode == 2  # an identity file is never overwritten
    assert f"unseal: cannot create {mine}: File exists" in again.stderr


def test_the_first_command_installs_what_every_demo_option_needs() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras["seal"]) <= set(extras["demo"])
    first = (ROOT / "README.md").read_text().splitlines()[1]
    assert "pip install -q '.[demo]'" in first
    assert first.endswith("iam-create-access-key demo")
