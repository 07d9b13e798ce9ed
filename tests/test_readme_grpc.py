"""The README's gRPC example runs as written against a local endpoint, as the demo's: both of
its blocks are taken from the README and run, ports aside (free ones for 5000 and 1337)."""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import ROOT, free_port


def example() -> tuple[str, str]:
    """The shell block and the Python block of the README's gRPC example."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Run it under a Blink runner\n", 1)[1].split("\n### ", 1)[0]
    after = section.split("the example below runs as written", 1)[1]
    shell = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    python = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert shell is not None
    assert python is not None
    return shell.group(1), python.group(1)


def run_example(change: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    shell, python = example()
    if change is not None:
        assert change[0] in python
        python = python.replace(change[0], change[1])
    script = (
        "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n"
        + shell
        + ".venv/bin/python - <<'PYTHON'\n"
        + python
        + "PYTHON\n"
    )
    script = script.replace("5000", str(free_port())).replace("1337", str(free_port()))
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
