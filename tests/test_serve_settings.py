"""`serve`'s flags from the environment (a flag wins over its variable), the `health` command,
and `serve` without its extra."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plugin.serve.defaults import SETTINGS
from tests.conftest import ROOT, free_port, run_cli
from tests.grpc_plugin import PluginProcess, execute_request
from tests.local_iam import LocalIAM


def test_every_flag_has_a_variable_and_the_readme_lists_it() -> None:
    readme = (ROOT / "README.md").read_text()
    help_text = run_cli("serve", "--help", env=dict(os.environ)).stdout
    for setting in SETTINGS:
        assert setting.variable.startswith("IAM_CREATE_ACCESS_KEY_")
        assert f"`{setting.variable}`" in readme, setting.variable
        assert f"`{setting.flag}" in readme, setting.flag
        assert setting.variable in help_text.replace("\n", " ").replace(" ", ""), setting.variable


def test_variables_configure_serve_and_a_flag_wins(iam: LocalIAM) -> None:
    port = free_port()
    by_environment = PluginProcess(
        env={
            "IAM_CREATE_ACCESS_KEY_MAX_CALLS": "1",
            "IAM_CREATE_ACCESS_KEY_ALLOW_ENDPOINT": f"https://example.org, {iam.url}",
            "IAM_CREATE_ACCESS_KEY_GRACE": "5",
        },
        local_endpoints=False,
        port=str(port),  # the flag, given: it wins over the variable below
    )
    try:
        assert by_environment.port == port
        user = iam.new_user()
        response = by_environment.stub().ExecuteAction(
            execute_request({"user_name": user}, iam.connection()), timeout=30
        )
        assert response.error_code == 0, response.error_message  # the listed endpoint
        assert by_environment.terminate() == 0
        assert "at most 5 s" in by_environment.text()
    finally:
        by_environment.stop()


def test_a_variable_sets_what_no_flag_gives(iam: LocalIAM) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve"],
        cwd=ROOT,
        env={**env, "IAM_CREATE_ACCESS_KEY_PORT": str(port)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert f"on 127.0.0.1:{port} (plaintext, loopback only)" in process.stderr.readline()
        healthy = run_cli("health", env={**env, "IAM_CREATE_ACCESS_KEY_PORT": str(port)})
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout == f"127.0.0.1:{port}: SERVING\n"
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "IAM_CREATE_ACCESS_KEY_MAX_CALLS",
            "many",
            "IAM_CREATE_ACCESS_KEY_MAX_CALLS='many' is not a whole number",
        ),
        (
            "IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT",
            "maybe",
            "IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT='maybe' is not true or false",
        ),
        (
            "IAM_CREATE_ACCESS_KEY_LEND_IDENTITY",
            "everyone",
            "IAM_CREATE_ACCESS_KEY_LEND_IDENTITY='everyone': one of none, assume-role, all",
        ),
    ],
    ids=["number", "switch", "choice"],
)
def test_a_bad_variable_is_named_and_nothing_starts(
    variable: str, value: str, expected: str
) -> None:
    completed = run_cli("serve", "--port", "0", env={**os.environ, variable: value}, timeout=30)
    assert completed.returncode == 2
    assert expected in completed.stderr
    assert "serving" not in completed.stderr


def test_health_says_not_serving_in_one_line_when_nobody_listens() -> None:
    port = free_port()
    completed = run_cli("health", "--port", str(port), "--timeout", "1", env=dict(os.environ))
    assert completed.returncode == 1
    assert completed.stdout == f"127.0.0.1:{port}: not serving (UNAVAILABLE)\n"


def test_health_over_a_unix_socket(tmp_path: object, iam: LocalIAM) -> None:
    path = f"{tmp_path}/plugin.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve", "--unix", path],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        process.stderr.readline()
        completed = run_cli("health", "--unix", path, env=dict(os.environ))
        assert (completed.returncode, completed.stdout) == (0, f"unix:{path}: SERVING\n")
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("command", ["serve", "health"])
def test_without_the_serve_extra_it_says_which_extra_to_install(command: str) -> None:
    probe = (
        "import sys\n"
        "sys.modules['grpc'] = None  # as if grpcio were not installed\n"
        "from plugin.cli import main\n"
        f"sys.exit(main(['{command}', '--port', '0']))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2
    assert (
        f"{command} needs the [serve] extra (grpc is not installed): pip install "
        "'iam-create-access-key[serve]'" in completed.stderr
    )
