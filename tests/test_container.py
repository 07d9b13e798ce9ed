"""The Dockerfile's own steps, outside a container (this machine has no container daemon): build
the wheel, install it and its serve extra alone into a fresh virtual environment, start the
ENTRYPOINT with the image's environment from a folder outside the checkout, probe it with the
HEALTHCHECK command, stop it with the STOPSIGNAL. The newest grpcio and protobuf come with it,
so this is also the server on the newest releases (the dev extra runs it at the floor)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests import dockerfile
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def test_the_image_steps_serve_and_pass_the_healthcheck(tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    subprocess.run(  # the build stage
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    environment = tmp_path / "image"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    install = dockerfile.one("RUN").split(" && ")[0]  # the runtime stage's pip install
    requirement = install.split('"')[1]
    assert requirement.startswith("iam-create-access-key[serve]==")
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
         f"--find-links={wheels}", requirement],
        check=True,
        capture_output=True,
    )  # fmt: skip
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "grpcio==" in installed
    assert "protobuf==" in installed
    assert "moto" not in installed
    assert "pytest" not in installed

    port = free_port()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        **dockerfile.environment(),
        "IAM_CREATE_ACCESS_KEY_PORT": str(port),  # the image's 1337 may be taken here
    }
    entrypoint = dockerfile.exec_form("ENTRYPOINT")
    server = subprocess.Popen(
        [str(bin_dir / entrypoint[0]), *entrypoint[1:]],
        cwd=tmp_path,  # outside the checkout: the installed wheel alone
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        ready = server.stderr.readline()
        assert f"on 0.0.0.0:{port} (plaintext, on a network declared closed)" in ready
        assert "warning: --insecure-plaintext" in server.stderr.readline()
        healthcheck = dockerfile.exec_form("HEALTHCHECK")
        checked = subprocess.run(
            [str(bin_dir / healthcheck[0]), *healthcheck[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout == f"0.0.0.0:{port}: SERVING\n"
        server.send_signal(getattr(signal, dockerfile.one("STOPSIGNAL")))
        assert server.wait(30) == 0
    finally:
        server.kill()
        server.wait()
