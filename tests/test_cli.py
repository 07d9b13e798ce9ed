"""The command line, run as a person or an engine runs it, against the local IAM endpoint."""

from __future__ import annotations

import json
import re
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_SECRET, LocalIAM
from tests.support.parameters import EXPECTED_PARAMETERS
from tests.support.paths import ROOT
from tests.support.ports import free_port


def test_run_prints_the_result_alone(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()

    completed = run_cli("run", "--regions", "us-east-1", "--user-name", user, env=cli_env)

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["AccessKey"]["UserName"] == user
    assert iam.key_ids(user) == [result["AccessKey"]["AccessKeyId"]]
    assert completed.stderr == ""


def test_run_without_regions_means_every_region(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()
    completed = run_cli("run", "--user-name", user, env=cli_env)
    assert completed.returncode == 0, completed.stderr
    assert len(iam.key_ids(user)) == 1


def test_run_prints_raw_xml_when_asked(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()
    mark = iam.mark()

    completed = run_cli("run", "--user-name", user, "--disable-xml-to-json", env=cli_env)

    assert completed.returncode == 0, completed.stderr
    sent = [e.body for e in iam.since(mark) if e.action == "CreateAccessKey"]
    assert completed.stdout == sent[0].decode() + "\n"


def test_aws_rejection_is_one_line_on_stderr_with_exit_3(cli_env: dict[str, str]) -> None:
    completed = run_cli("run", "--user-name", "ghost", "--wait-for-user", "0", env=cli_env)

    assert completed.returncode == 3
    assert completed.stdout == ""
    assert re.fullmatch(
        r'iam-create-access-key: error: CreateAccessKey failed for user "ghost": NoSuchEntity: '
        r"The user with name ghost cannot be found\. \(request id \w+\)\n",
        completed.stderr,
    )


def test_invalid_input_exits_2_and_sends_nothing(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    mark = iam.mark()
    completed = run_cli("run", "--regions", "us-est-1", "--user-name", "a b", env=cli_env)

    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "parameters.regions" in completed.stderr
    assert "parameters.user_name" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert iam.since(mark) == []


def test_missing_credentials_exit_3(cli_env: dict[str, str]) -> None:
    env = {
        k: v for k, v in cli_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    completed = run_cli("run", "--user-name", "bob", env=env)
    assert completed.returncode == 3
    assert "no AWS credentials found" in completed.stderr


def test_unreachable_endpoint_exits_4(cli_env: dict[str, str]) -> None:
    port = free_port()
    env = {**cli_env, "AWS_ENDPOINT_URL_IAM": f"http://127.0.0.1:{port}"}
    completed = run_cli("run", "--user-name", "bob", env=env)
    assert completed.returncode == 4
    assert "could not connect to the IAM endpoint" in completed.stderr


def test_plain_http_to_a_remote_endpoint_exits_2(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "AWS_ENDPOINT_URL_IAM": "http://iam.example.com"}
    completed = run_cli("run", "--user-name", "bob", env=env)
    assert completed.returncode == 2
    assert "is not https" in completed.stderr


def test_execute_reads_a_request_and_prints_the_response(
    iam: LocalIAM, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    request = {"parameters": {"regions": "*", "user_name": user, "disable_xml_to_json": "false"}}

    completed = run_cli("execute", env=cli_env, stdin=json.dumps(request).encode())

    assert completed.returncode == 0, completed.stderr
    response = json.loads(completed.stdout)
    assert response["error_code"] == 0
    assert response["result"]["AccessKey"]["UserName"] == user
    assert response["result"]["AccessKey"]["SecretAccessKey"] not in completed.stderr


def test_execute_carries_its_connection(iam: LocalIAM) -> None:
    user = iam.new_user()
    request = {"parameters": {"user_name": user}, "connection": iam.connection()}
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    completed = run_cli("execute", env=env, stdin=json.dumps(request).encode())

    assert completed.returncode == 0, completed.stderr
    assert len(iam.key_ids(user)) == 1


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        (
            b'{"parameters":\n  {not json',
            "Invalid input: it is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 2, column 4",
        ),
        (
            b'{"parameters": {"user_name": "b\xffb"}}',
            "Invalid input: it is not valid UTF-8 JSON: a byte that is not UTF-8 at line 1, "
            "column 32",
        ),
        (
            b'{"parameters": {"user_name": "a", "user_name": "b"}}',
            "the field user_name is given twice",
        ),
        (b'{"parameters": {"user_nme": "bob"}}', "parameters.user_nme: unknown field"),
        (b"[]", "the request must be a JSON object"),
    ],
    ids=["malformed", "not-utf8", "duplicate-key", "typo", "not-an-object"],
)
def test_execute_bad_requests_exit_2(
    iam: LocalIAM, cli_env: dict[str, str], stdin: bytes, expected: str
) -> None:
    mark = iam.mark()
    completed = run_cli("execute", env=cli_env, stdin=stdin)

    assert completed.returncode == 2
    response = json.loads(completed.stdout)
    assert response["error_code"] == 2
    assert response["result"] is None
    assert expected in response["error_message"]
    assert "Traceback" not in completed.stderr
    assert iam.since(mark) == []


def test_execute_exit_status_is_the_error_code(cli_env: dict[str, str]) -> None:
    request = {"parameters": {"user_name": "ghost", "wait_for_user": "0"}}
    completed = run_cli("execute", env=cli_env, stdin=json.dumps(request).encode())
    assert completed.returncode == json.loads(completed.stdout)["error_code"] == 3


def test_describe_prints_the_manifest(cli_env: dict[str, str]) -> None:
    completed = run_cli("describe", env=cli_env)
    assert completed.returncode == 0
    document = json.loads(completed.stdout)
    assert document["display_name"] == "IAM Create Access Key"
    assert [p["name"] for p in document["parameters"]] == [
        name for name, _, _ in EXPECTED_PARAMETERS
    ]


@pytest.mark.parametrize("first", [False, True], ids=["after-the-command", "before-the-command"])
def test_debug_logs_the_wire_but_never_a_secret(
    iam: LocalIAM, cli_env: dict[str, str], first: bool
) -> None:
    """--debug on any command, before it (iam-create-access-key --debug run) or after it."""
    user = iam.new_user()
    arguments = ["run", "--user-name", user]
    arguments = ["--debug", *arguments] if first else [*arguments, "--debug"]

    completed = run_cli(*arguments, env=cli_env)

    assert completed.returncode == 0, completed.stderr
    secret = json.loads(completed.stdout)["AccessKey"]["SecretAccessKey"]
    assert "Response body" in completed.stderr  # botocore's wire log is there ...
    assert "withheld from the log" in completed.stderr  # ... but not the answer's body
    assert secret not in completed.stderr
    assert ADMIN_SECRET not in completed.stderr


def test_debug_error_output_carries_no_secret(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    completed = run_cli(
        "run", "--user-name", "ghost", "--wait-for-user", "0", "--debug", env=cli_env
    )
    assert completed.returncode == 3
    assert ADMIN_SECRET not in completed.stderr
    assert "Traceback" not in completed.stderr


def test_demo_runs_the_two_step_workflow(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_ENDPOINT")}

    completed = run_cli("demo", env=env)

    assert completed.returncode == 0, completed.stderr
    assert "Step 1: IAM Create User" in completed.stdout
    user = re.search(r'"UserName": "(demo-user-\w+)"', completed.stdout)
    assert user is not None
    response = completed.stdout.split("(engine response)\n", 1)[1].split("\n\n")[0]
    assert json.loads(response)["result"]["AccessKey"]["UserName"] == user.group(1)
    assert "Traceback" not in completed.stderr


def test_debug_masks_a_session_token_from_the_environment(
    iam: LocalIAM, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    token = "env-session-token-" + "Zq7" * 20
    env = {**cli_env, "AWS_SESSION_TOKEN": token}

    completed = run_cli("run", "--user-name", user, "--debug", env=env)

    assert completed.returncode == 0, completed.stderr
    assert "x-amz-security-token" in completed.stderr.lower()
    assert token not in completed.stderr
    assert ADMIN_SECRET not in completed.stderr
    assert json.loads(completed.stdout)["AccessKey"]["SecretAccessKey"] not in completed.stderr


def test_output_file_is_created_0600_with_the_result(
    iam: LocalIAM, cli_env: dict[str, str], tmp_path: Path
) -> None:
    user = iam.new_user()
    target = tmp_path / "key.json"

    completed = run_cli("run", "--user-name", user, "--output-file", str(target), env=cli_env)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    result = json.loads(target.read_text())
    assert iam.key_ids(user) == [result["AccessKey"]["AccessKeyId"]]
    assert result["AccessKey"]["SecretAccessKey"] not in completed.stderr


@pytest.mark.parametrize("existing", ["file", "symlink", "dangling-symlink"])
def test_output_file_never_overwrites_or_follows_a_link(
    iam: LocalIAM, cli_env: dict[str, str], tmp_path: Path, existing: str
) -> None:
    user = iam.new_user()
    target, elsewhere = tmp_path / "key.json", tmp_path / "elsewhere"
    if existing == "file":
        target.write_text("keep me")
    elif existing == "symlink":
        elsewhere.write_text("keep me")
        target.symlink_to(elsewhere)
    else:
        target.symlink_to(elsewhere)
    mark = iam.mark()

    completed = run_cli("run", "--user-name", user, "--output-file", str(target), env=cli_env)

    assert completed.returncode == 2
    assert "--output-file" in completed.stderr
    assert iam.since(mark) == []  # refused before any key was created
    assert not elsewhere.exists() or elsewhere.read_text() == "keep me"


def test_output_file_is_removed_when_the_action_fails(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "key.json"
    completed = run_cli(
        "run",
        "--user-name",
        "ghost",
        "--wait-for-user",
        "0",
        "--output-file",
        str(target),
        env=cli_env,
    )
    assert completed.returncode == 3
    assert not target.exists()


def _run_with_no_room_for_files(
    arguments: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`run` under `ulimit -f 0`: every write to a file fails (EFBIG), pipes still work."""

    def no_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    return subprocess.run(
        [sys.executable, "-m", "plugin", "run", *arguments],
        capture_output=True,
        text=True,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=ROOT,
        timeout=60,
        check=False,
        preexec_fn=no_file_size,  # the child sets its own limit before exec
    )


def test_an_output_file_that_cannot_be_written_deletes_the_key(
    iam: LocalIAM, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Deliver or delete: the flush fails, so the key goes; no empty file is left."""
    user = iam.new_user()
    target = tmp_path / "key.json"

    completed = _run_with_no_room_for_files(
        ["--user-name", user, "--output-file", str(target)], cli_env
    )

    assert completed.returncode == 4, completed.stderr
    assert f"--output-file {target} could not be written (File too large)" in completed.stderr
    assert "was deleted, so nothing is left behind" in completed.stderr
    assert iam.key_ids(user) == []
    assert not target.exists()
    assert completed.stdout == ""


def test_an_output_file_that_cannot_be_written_names_a_key_it_cannot_delete(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str], tmp_path: Path
) -> None:
    user = iam.new_user()
    target = tmp_path / "key.json"
    proxy.inject("DeleteAccessKey", faults.DENY)

    completed = _run_with_no_room_for_files(
        ["--user-name", user, "--output-file", str(target)],
        {**cli_env, "AWS_ENDPOINT_URL_IAM": proxy.url},
    )

    (key_id,) = iam.key_ids(user)
    assert completed.returncode == 4, completed.stderr
    assert f"key {key_id} was created but cannot be delivered" in completed.stderr
    assert f"aws iam delete-access-key --access-key-id {key_id} --user-name {user}" in (
        completed.stderr
    )
    assert not target.exists()


def test_the_demo_takes_the_actions_options(cli_env: dict[str, str]) -> None:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_ENDPOINT")}

    sealed = run_cli(
        "demo", "--seal-secret-to", str(identity.to_public()), "--status", "Inactive", env=env
    )
    vaulted = run_cli("demo", "--vault", "secretsmanager:demo/key", env=env)
    checked = run_cli("demo", "--check-only", env=env)

    for completed in (sealed, vaulted, checked):
        assert completed.returncode == 0, completed.stderr[-2000:]
    key = json.loads(sealed.stdout.split("(engine response)\n", 1)[1].split("\n\n")[0])["result"][
        "AccessKey"
    ]
    assert key["Status"] == "Inactive"
    assert len(pyrage.decrypt(key["SealedSecretAccessKey"].encode(), [identity])) == 40
    assert (
        "SecretArn"
        in json.loads(vaulted.stdout.split("(engine response)\n", 1)[1].split("\n\n")[0])["result"][
            "Vault"
        ]
    )
    assert (
        json.loads(checked.stdout.split("(engine response)\n", 1)[1].split("\n\n")[0])["result"][
            "Check"
        ]["WouldCreate"]
        is True
    )
