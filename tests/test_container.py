"""The Dockerfile's own steps, outside a container (this machine has no container daemon): in
a fresh virtual environment for each stage, run the stage's pip commands as written (the build
backend and the serve dependencies from their hash-locked requirements, the wheel with
--no-deps --no-index), start the ENTRYPOINT with the image's environment and the service links
a Kubernetes namespace injects, from a folder outside the checkout, probe it with the
HEALTHCHECK command, stop it with the STOPSIGNAL. So this is also the server on the locked
releases (the dev extra runs it at the floor)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import venv
from pathlib import Path

import pytest
import tomllib

from tests.support import dockerfile
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.service_links import SERVICE_LINKS

pytestmark = pytest.mark.slow
# pip as in the image: no configuration of this machine's (local wheel folders, extra indexes)
PIP_AS_IN_THE_IMAGE = {
    **{k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL")},
    "PIP_CONFIG_FILE": os.devnull,
}


def perform(stage: int, bin_dir: Path, paths: dict[str, str]) -> None:
    """Run a stage's pip commands in this environment, its paths mapped to this machine's."""
    for command in dockerfile.commands(dockerfile.stage(stage)):
        words = shlex.split(command)
        if words[0] != "pip":
            continue
        words = [paths.get(word, word) for word in words]
        completed = subprocess.run(
            [str(bin_dir / "python"), "-m", *words],
            capture_output=True,
            text=True,
            env=PIP_AS_IN_THE_IMAGE,
            cwd=ROOT,
            check=False,
        )
        assert completed.returncode == 0, f"{command}\n{completed.stdout}{completed.stderr}"


def test_every_pip_install_is_locked_by_hash_or_takes_no_index() -> None:
    installs = [
        shlex.split(command)
        for index in (0, 1)
        for command in dockerfile.commands(dockerfile.stage(index))
        if command.startswith("pip install")
    ]
    assert len(installs) == 3
    for words in installs:
        if "--no-index" in words:
            assert "--no-deps" in words
            (wheel,) = [word for word in words if word.endswith(".whl")]
            version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
            assert wheel == f"/dist/iam_create_access_key-{version}-py3-none-any.whl"
        else:
            assert {"--require-hashes", "--only-binary=:all:", "-r"} <= set(words), words
    bases = [arguments for keyword, arguments in dockerfile.instructions() if keyword == "FROM"]
    assert len(bases) == 2
    for base in bases:
        assert re.fullmatch(
            r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}( AS build)?", base
        )
    text = dockerfile.PATH.read_text()
    for base in bases:  # the tag in a comment right above each FROM
        tag = base.split("@")[0]
        assert f"# {tag}\nFROM {base}" in text


def on_port(command: list[str], port: str, flag: str = "--health-port") -> list[str]:
    """The command with its --health-port (or another flag's) value replaced."""
    at = command.index(flag) + 1
    return [*command[:at], port, *command[at + 1 :]]


def test_the_image_steps_serve_and_pass_the_healthcheck(tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    build = tmp_path / "build"
    venv.create(build, with_pip=True)
    perform(0, build / "bin", {"/dist": str(wheels), ".": str(ROOT)})
    environment = tmp_path / "image"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    (wheel,) = wheels.glob("*.whl")
    perform(
        1,
        bin_dir,
        {
            "/tmp/requirements.txt": str(ROOT / "requirements" / "serve.txt"),  # noqa: S108
            f"/dist/{wheel.name}": str(wheel),
        },
    )
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
        **SERVICE_LINKS,  # as the kubelet injects them beside the image's environment
        **dockerfile.environment(),
        "IAM_CREATE_ACCESS_KEY_PORT": str(port),  # the default 1337 may be taken here
    }
    # the image's health socket, in a folder of this machine's (the image's /run/... is its own)
    socket_path = tmp_path / "run" / "health.sock"
    socket_path.parent.mkdir(mode=0o700)
    env["IAM_CREATE_ACCESS_KEY_HEALTH_SOCKET"] = str(socket_path)
    # the image's health port (a flag, 1338) may be taken here too: the same flag, another port
    health = str(free_port())
    entrypoint = on_port(dockerfile.exec_form("ENTRYPOINT"), health)
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
        assert f"health on 0.0.0.0:{health} (grpc.health.v1 only" in server.stderr.readline()
        assert f"health on unix socket {socket_path}, mode 0600" in server.stderr.readline()
        healthcheck = on_port(
            dockerfile.exec_form("HEALTHCHECK"), str(socket_path), "--health-socket"
        )
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
        assert checked.stdout == f"unix:{socket_path}: SERVING\n"
        server.send_signal(getattr(signal, dockerfile.one("STOPSIGNAL")))
        assert server.wait(30) == 0
    finally:
        server.kill()
        server.wait()
