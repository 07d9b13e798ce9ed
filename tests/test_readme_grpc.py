"""The README's gRPC example runs as written against a local endpoint, as the demo's: its
blocks (start and wait, the Python client, stop) are taken from the README and run, ports aside
(free ones for 5002 and 1337)."""

from __future__ import annotations

import os
import re
import subprocess

from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.readme_grpc_example import example_script


def run_example(change: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + example_script(change=change)
    script = script.replace("5002", str(free_port())).replace("1337", str(free_port()))
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_readme_grpc_example_runs_as_written() -> None:
    completed = run_example()

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert re.search(r"^AKIA[A-Z0-9]{16} Active$", completed.stdout, re.MULTILINE), completed.stdout
    assert 'INFO input checked; creating a key for user "Bob"' in completed.stdout


def test_on_failure_it_prints_the_error_message() -> None:
    completed = run_example(('"AWS Region(s)": "us-east-1"', '"AWS Region(s)": "us-eats-1"'))

    assert completed.returncode == 1
    assert (
        '\nerror 2: Invalid input: parameters.regions: "us-eats-1" is not a region that botocore '
        'lists; did you mean "us-east-1"?\n'
    ) in completed.stderr, completed.stderr[-2000:]
