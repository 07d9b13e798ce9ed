"""The Shuffle app as its image runs it: built once a module, run with the worker's environment."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any

import pytest

from plugin.hosts.shuffle import folder
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET

APP = folder.APP


@dataclasses.dataclass(frozen=True)
class BuiltApp:
    python: Path  # the image's interpreter (a fresh virtual environment)
    src: Path  # /app in the image: a copy of src/, away from the checkout
    home: Path  # the container's HOME: no AWS config of the machine's user


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """The app image's Python, built once for the module as the Dockerfile builds it."""
    root = tmp_path_factory.mktemp("shuffle-app")
    copy = root / "app"
    shutil.copytree(APP, copy)
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    for extra in ([], ["--no-build-isolation"]):  # the build backends, then the app's packages
        lock = "build-requirements.txt" if not extra else "requirements.txt"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--require-hashes", *extra,
             "-r", str(copy / lock)],
            check=True,
            capture_output=True,
            cwd=root,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            timeout=900,
        )  # fmt: skip
    (root / "home").mkdir()
    return BuiltApp(python, copy / "src", root / "home")


def image_env() -> dict[str, str]:
    """The ENV lines of the app's Dockerfile: the operator's settings the image carries."""
    found = re.findall(r"^ENV (\w+)=(.*)$", (APP / "Dockerfile").read_text(), re.MULTILINE)
    assert found, "the Dockerfile sets the app's settings"
    return dict(found)


def worker_env(built: BuiltApp, **more: str) -> dict[str, str]:
    """The app container's environment: the image's (PATH, HOME, its ENV), the worker's fixed
    list, then what a test adds as the image or a Helm chart's extraEnvVars would."""
    return {
        "PATH": f"{built.python.parent}:/usr/bin:/bin",
        "HOME": str(built.home),
        "LANG": "C.UTF-8",
        **image_env(),
        "EXECUTIONID": "",
        "AUTHORIZATION": "",
        "CALLBACK_URL": "",
        "BASE_URL": "",
        "TZ": "Europe/Amsterdam",
        "SHUFFLE_LOGS_DISABLED": "",
        "SHUFFLE_APP_SDK_TIMEOUT": "",  # deployApp adds it even when the worker has none
        **more,
    }


def chart(proxy: FaultProxy) -> dict[str, str]:
    """What an operator adds in the Helm chart's extraEnvVars: the IAM endpoint (moto's)."""
    return {"AWS_ENDPOINT_URL": proxy.url}


def authentication(**given: str) -> dict[str, str]:
    """The app's authentication, as the backend copies it into the action's arguments: the
    session token left "empty" (a space, as Shuffle's form demands)."""
    return {
        "access_key_id": ADMIN_KEY_ID,
        "secret_access_key": ADMIN_SECRET,
        "session_token": " ",
        "region": "us-east-1",
        **given,
    }


def standalone(built: BuiltApp, given: dict[str, str], **env: str) -> tuple[dict[str, Any], str]:
    """`python app.py --standalone --action=create_access_key --name=value ...`: the result the
    SDK prints, and everything the process wrote."""
    completed = subprocess.run(
        [str(built.python), "app.py", "--standalone", "--action=create_access_key",
         *[f"--{name}={value}" for name, value in given.items()]],
        cwd=built.src,
        env=worker_env(built, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    printed = completed.stdout.split("=====\n", 1)[1]
    return json.loads(printed), completed.stdout + completed.stderr
