"""The benchmark runs end to end (with tiny counts), so that it cannot rot. It times nothing."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_the_benchmark_runs_and_prints_its_table() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmark",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--calls",
            "5",
            "--scale-calls",
            "16",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    for row in (
        "cold wall time",
        "cold peak RSS",
        "warm per call",
        "calls/s, 16 threads",
        "regions '*'",
        "per call, deadline 30 s",
        "calls/s, 32 concurrent clients",
    ):
        assert row in completed.stdout
