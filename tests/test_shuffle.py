"""The action as a Shuffle app, driven by Shuffle's own SDK (no mock of it), against moto: the
standalone mode, the production path (the SDK posting its result to a stand-in for Shuffle's
backend) and the microservice mode; custody under the SDK's timeout and under faults.

The app runs in a virtual environment of its own holding what Shuffle's app image holds: the
SDK (the `shuffle` extra's pin) and the app's requirements.txt (the action's wheel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from plugin import manifest, resources, shuffle_app
from tests import fault_proxy as faults
from tests.conftest import ROOT, free_port
from tests.fault_proxy import FaultProxy
from tests.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM
from tests.shuffle_backend import ShuffleBackend, action

APP = ROOT / "shuffle" / "iam-create-access-key" / "0.1.0"
ALLOW_LOCAL = {"IAM_CREATE_ACCESS_KEY_ALLOW_ENDPOINT": "http://127.0.0.1:*"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app image's Python: Shuffle's SDK, then the app's requirements.txt."""
    folder = tmp_path_factory.mktemp("shuffle-app")
    wheels = folder / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (sdk,) = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["shuffle"]
    venv.create(folder / "venv", with_pip=True)
    interpreter = folder / "venv" / "bin" / "python"
    subprocess.run(
        [str(interpreter), "-m", "pip", "install", "-q", "--no-cache-dir", sdk,
         f"--find-links={wheels}", "-r", str(APP / "requirements.txt")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return interpreter


@pytest.fixture
def backend() -> Iterator[ShuffleBackend]:
    stand_in = ShuffleBackend()
    yield stand_in
    stand_in.stop()


def app_env(**more: str) -> dict[str, str]:
    """The app container's environment: no AWS identity of its own unless a test gives one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHUFFLE_"))}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(AWS_EC2_METADATA_DISABLED="true", **ALLOW_LOCAL, **more)
    return env


def fields(iam: LocalIAM, endpoint: str, **parameters: str) -> dict[str, str]:
    """The action's parameters and the authentication fields, as Shuffle's form holds them."""
    return {
        "regions": "us-east-1",
        "access_key_id": ADMIN_KEY_ID,
        "secret_access_key": ADMIN_SECRET,
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "session_token": "",  # a field left empty: not given
        **parameters,
    }


def standalone(python: Path, given: dict[str, str], **env: str) -> tuple[dict[str, Any], str]:
    """`python app.py --standalone --action=create_access_key --name=value ...`: the result the
    SDK prints, and everything the process wrote."""
    completed = subprocess.run(
        [str(python), "app.py", "--standalone", "--action=create_access_key",
         *[f"--{name}={value}" for name, value in given.items()]],
        cwd=APP / "src",
        env=app_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    printed = completed.stdout.split("=====\n", 1)[1]
    return json.loads(printed), completed.stdout + completed.stderr


# ---- api.yaml, from the manifest -------------------------------------------------------------


def test_api_yaml_is_the_manifest_regenerated() -> None:
    assert (APP / "api.yaml").read_text() == shuffle_app.render(), "run make shuffle-app"


def test_api_yaml_has_every_parameter_in_order_and_the_authentication() -> None:
    document = yaml.safe_load((APP / "api.yaml").read_text())
    assert document["app_version"] == resources.manifest()["version"]
    (only,) = document["actions"]
    assert only["name"] == "create_access_key"
    parameters = {p["name"]: p for p in only["parameters"]}
    assert list(parameters) == [p["name"] for p in manifest.parameters()]
    assert parameters["status"]["options"] == ["Active", "Inactive"]
    assert parameters["disable_xml_to_json"]["options"] == ["false", "true"]
    assert parameters["user_name"]["example"] == "Bob"
    assert parameters["user_name"]["description"].startswith("User Name: ")
    assert json.loads(only["returns"]["example"])["success"] is True
    auth = {p["name"]: p for p in document["authentication"]["parameters"]}
    assert list(auth) == list(resources.schema("connection")["properties"])
    for secret in ("secret_access_key", "session_token"):
        assert auth[secret]["schema"]["format"] == "password"
        assert auth[secret]["example"] == "*****"
    assert "format" not in auth["access_key_id"]["schema"]


@pytest.mark.parametrize(
    ("given", "expected"), [("", 27.0), ("30", 27.0), ("100", 97.0), ("4", 2.0), ("x", 27.0)]
)
def test_the_actions_deadline_is_below_the_sdks(given: str, expected: float) -> None:
    assert shuffle_app.action_deadline({"SHUFFLE_APP_SDK_TIMEOUT": given}) == expected


# ---- the three ways the SDK runs an app ------------------------------------------------------


def test_standalone_creates_one_key_and_answers_in_shuffles_convention(
    python: Path, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    result, output = standalone(python, fields(iam, proxy.url, user_name=user))

    assert result["success"] is True
    key = result["AccessKey"]
    assert (key["UserName"], key["Status"]) == (user, "Active")
    assert iam.key_ids(user) == [key["AccessKeyId"]]
    assert proxy.issued_secrets(mark) == [key["SecretAccessKey"]]
    assert output.count(key["SecretAccessKey"]) == 1  # in the printed result only
    assert ADMIN_SECRET not in output


def test_standalone_failure_has_the_code_and_reason(
    python: Path, iam: LocalIAM, proxy: FaultProxy
) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    result, _ = standalone(python, fields(iam, proxy.url, user_name=ghost, wait_for_user="0"))
    assert result == {
        "success": False,
        "reason": result["reason"],
        "error_code": 3,
    }
    assert result["reason"].startswith(f'CreateAccessKey failed for user "{ghost}": NoSuchEntity')
    bad, _ = standalone(python, fields(iam, proxy.url, user_name="not valid!", statuss="x"))
    assert bad["error_code"] == 2
    assert "parameters.statuss: unknown field" in bad["reason"]
    assert "parameters.user_name: must match" in bad["reason"]


def run_production(python: Path, backend: ShuffleBackend, given: dict[str, str]) -> str:
    """As Shuffle's worker starts an app: the action and execution in its environment."""
    completed = subprocess.run(
        [str(python), "app.py"],
        cwd=APP / "src",
        env=app_env(
            ACTION=json.dumps(action(given)),
            AUTHORIZATION="workflow-authorization",
            EXECUTIONID="execution-1",
            BASE_URL=backend.url,
            CALLBACK_URL=backend.url,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def test_production_path_posts_the_result_and_keeps_secrets_out_of_the_logs(
    python: Path, backend: ShuffleBackend, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    mark = proxy.mark()
    outputs = run_production(python, backend, fields(iam, proxy.url, user_name=user))
    outputs += run_production(
        python, backend, fields(iam, proxy.url, user_name=ghost, wait_for_user="0")
    )

    succeeded, failed = backend.received()
    assert (succeeded["status"], succeeded["execution_id"]) == ("SUCCESS", "execution-1")
    key = json.loads(succeeded["result"])["AccessKey"]
    assert iam.key_ids(user) == [key["AccessKeyId"]]
    (secret,) = proxy.issued_secrets(mark)
    assert key["SecretAccessKey"] == secret
    failure = json.loads(failed["result"])
    assert (failure["success"], failure["error_code"]) == (False, 3)
    assert "NoSuchEntity" in failure["reason"]
    for posted in (succeeded, failed):
        (logs,) = [p["value"] for p in posted["action"]["parameters"]
                   if p["name"] == "shuffle_action_logs"]  # fmt: skip
        assert "create_access_key" in logs  # the SDK's captured log is there ...
        assert secret not in logs  # ... without the new secret
    assert secret not in outputs


def test_microservice_mode_runs_the_action_posted_to_it(
    python: Path, backend: ShuffleBackend, iam: LocalIAM, proxy: FaultProxy
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(python), "app.py"],
        cwd=APP / "src",
        env=app_env(SHUFFLE_SWARM_CONFIG="run", SHUFFLE_APP_EXPOSED_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app's webserver never answered"
                time.sleep(0.2)
        user = iam.new_user()
        run = {
            "action": action(fields(iam, proxy.url, user_name=user)),
            "authorization": "workflow-authorization",
            "execution_id": "execution-2",
            "url": backend.url,
            "base_url": backend.url,
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/run",
            data=json.dumps(run).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (loopback)
            assert json.loads(answer.read())["success"] is True
        (posted,) = backend.received()
        key = json.loads(posted["result"])["AccessKey"]
        assert posted["execution_id"] == "execution-2"
        assert iam.key_ids(user) == [key["AccessKeyId"]]
    finally:
        server.terminate()
        server.wait(30)


# ---- custody under Shuffle's SDK -------------------------------------------------------------


def test_a_call_the_sdks_timeout_would_cut_leaves_no_key(
    python: Path, iam: LocalIAM, proxy: FaultProxy
) -> None:
    """The SDK gives 4 s and then reports a failure while the call runs on; the action's own
    deadline (2 s) comes first: it answers, and the key IAM made behind the held answer is
    found and deleted."""
    user = iam.new_user()
    proxy.inject("CreateAccessKey", *[faults.hold_after_forward(6)] * 6)  # every attempt
    mark = proxy.mark()
    started = time.monotonic()
    result, _ = standalone(
        python, fields(iam, proxy.url, user_name=user), SHUFFLE_APP_SDK_TIMEOUT="4"
    )
    assert time.monotonic() - started < 6
    assert result["success"] is False
    assert result["error_code"] == 4
    assert "Timeout error" not in result["reason"]  # the action's answer, not the SDK's
    assert proxy.issued_secrets(mark)  # IAM did make a key ...
    assert iam.key_ids(user) == []  # ... and none is left


def test_an_answer_lost_after_iam_acted_leaves_exactly_the_delivered_key(
    python: Path, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.DROP_AFTER_FORWARD)
    mark = proxy.mark()
    result, _ = standalone(python, fields(iam, proxy.url, user_name=user))
    assert result["success"] is True, result
    delivered = result["AccessKey"]
    issued = proxy.issued_secrets(mark)
    assert len(issued) == 2  # the lost one, then the one delivered
    assert issued[-1] == delivered["SecretAccessKey"]
    assert iam.key_ids(user) == [delivered["AccessKeyId"]]


def test_the_workers_own_identity_is_lent_to_nobody_by_default(python: Path, iam: LocalIAM) -> None:
    user = iam.new_user()
    mark = iam.mark()
    ambient = {
        "AWS_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
        "AWS_ENDPOINT_URL": iam.url,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result, _ = standalone(python, {"user_name": user}, **ambient)
    assert result["success"] is False
    assert result["error_code"] == 3
    assert "lends to nobody" in result["reason"]
    assert iam.since(mark) == []
    lent, _ = standalone(
        python, {"user_name": user}, **ambient, IAM_CREATE_ACCESS_KEY_LEND_IDENTITY="all"
    )
    assert lent["success"] is True, lent
    assert iam.key_ids(user) == [lent["AccessKey"]["AccessKeyId"]]
