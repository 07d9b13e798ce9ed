"""The README's two local-endpoint recipes ("A local endpoint" and the gRPC example) run one
after the other, as written, while the first one's servers still run: each waits for its own
endpoint (bounded, saying what failed) on a port of its own, and stops what it started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.readme_grpc_example import example_script
from tests.support.readme_recipes import readme_recipe

# The ports the README's recipes name, each given one free port for the whole test: two
# recipes that named the same port would meet on it here as on a person's machine.
README_PORTS = ("5000", "5002", "1337")


def local_endpoint(stop: bool = True) -> str:
    recipe = readme_recipe()
    if stop:
        return recipe
    return "".join(line for line in recipe.splitlines(True) if not line.startswith("kill "))


def grpc_example(stop: bool = True) -> str:
    return example_script(stop=stop)


RECIPES: dict[str, Callable[[bool], str]] = {"local": local_endpoint, "grpc": grpc_example}


def environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture
def ports() -> dict[str, str]:
    return {port: str(free_port()) for port in README_PORTS}


@pytest.fixture
def left_running() -> Iterator[list[int]]:
    """Process groups of recipes whose servers were left running; stopped after the test."""
    groups: list[int] = []
    yield groups
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)


def on(ports: dict[str, str], script: str) -> str:
    for written, free in ports.items():
        script = script.replace(written, free)
    return script


def run_leaving_servers(script: str, left_running: list[int], log: Path) -> None:
    """Run a recipe without its last, stopping line: its servers stay up, as when a person
    stopped half-way. (Output to a file: the servers keep a pipe open for as long as they run.)"""
    with log.open("w") as output:
        started = subprocess.Popen(
            ["bash", "-c", "set -e\n" + script],
            cwd=ROOT,
            env=environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        left_running.append(started.pid)
        returncode = started.wait(timeout=240)
    assert returncode == 0, log.read_text()[-3000:]


def run_as_written(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + script],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.parametrize(
    ("first", "then"),
    [("local", "grpc"), ("grpc", "local")],
    ids=["local-then-grpc", "grpc-then-local"],
)
def test_each_recipe_runs_after_the_other_with_its_servers_still_up(
    ports: dict[str, str], left_running: list[int], tmp_path: Path, first: str, then: str
) -> None:
    run_leaving_servers(on(ports, RECIPES[first](False)), left_running, tmp_path / "first.log")

    completed = run_as_written(on(ports, RECIPES[then](True)))

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    if then == "grpc":
        assert re.search(r"^AKIA[A-Z0-9]{16} Active$", completed.stdout, re.MULTILINE)
    else:
        assert completed.stdout.count('"UserName": "Bob"') == 3, completed.stdout


def test_a_recipe_whose_earlier_run_holds_its_port_says_so(
    ports: dict[str, str], left_running: list[int], tmp_path: Path
) -> None:
    """The same recipe again, its first run's moto_server still on the port: the wait ends at
    once naming the cause, instead of looping (or acting on the earlier run's state)."""
    run_leaving_servers(on(ports, local_endpoint(False)), left_running, tmp_path / "first.log")

    completed = run_as_written(on(ports, local_endpoint(True)))

    # Not 0 (the recipe stops there); its exact value is the harness's trap's when this run's
    # own moto_server has already exited (`kill` with no job left is a usage error, 2).
    assert completed.returncode != 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert (
        f"Bob exists at http://127.0.0.1:{ports['5000']}: an earlier moto_server holds the port; "
        "stop it (kill PID)\n"
    ) in completed.stderr
    assert '"UserName": "Bob"' not in completed.stdout
