"""The built wheel carries the manifest and schemas and works outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and unpack it (what installing a wheel does) in a folder of its own."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("iam_create_access_key-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "plugin/action.yaml" in names
        assert {"plugin/schemas/input.schema.json", "plugin/schemas/output.schema.json"} <= set(
            names
        )
        assert {
            "plugin/hosts/serve/protocol/integration_pack.proto",
            "plugin/hosts/serve/protocol/integration_pack_pb2.py",
            "plugin/hosts/serve/protocol/integration_pack_pb2_grpc.py",
        } <= set(names)
        assert not any(name.startswith("tests/") for name in names)
        archive.extractall(site)
    return site


def run_from_wheel(
    site: Path, cwd: Path, *arguments: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    return run_cli(*arguments, env={**os.environ, "PYTHONPATH": str(site)}, stdin=stdin, cwd=cwd)


def test_the_wheel_describes_itself_outside_the_checkout(
    installed_wheel: Path, tmp_path: Path
) -> None:
    located = subprocess.run(
        [
            sys.executable,
            "-c",
            "import plugin, plugin.contract.resources as r; print(plugin.__file__); print(r.resource_path('action.yaml'))",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed_wheel)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert all(line.startswith(str(installed_wheel)) for line in located)

    completed = run_from_wheel(installed_wheel, tmp_path, "describe")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["display_name"] == "IAM Create Access Key"


def test_the_wheel_validates_input_with_its_own_schemas(
    installed_wheel: Path, tmp_path: Path
) -> None:
    request = json.dumps({"parameters": {"user_name": "not valid!"}}).encode()
    completed = run_from_wheel(installed_wheel, tmp_path, "execute", stdin=request)
    assert completed.returncode == 2
    assert "parameters.user_name: must match" in json.loads(completed.stdout)["error_message"]
