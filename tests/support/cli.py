"""The command line as a person or an engine runs it: `python -m plugin ...` in a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def run_cli(
    *arguments: str,
    env: dict[str, str],
    stdin: bytes = b"",
    timeout: float = 60,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m plugin ...` as a person or an engine would, capturing everything."""
    completed = subprocess.run(
        [sys.executable, "-m", "plugin", *arguments],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        completed.args,
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )
