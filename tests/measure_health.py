"""What health costs (issue 20): one exec probe's run of `iam-create-access-key health` on the
health socket (processor seconds, peak resident memory, and the part of it that is its own
rather than the shared libraries the server has already loaded), and what idle connections
held on the health port cost the server (resident memory, open files). The figures behind the
README's "Operations" and health_listener.CONNECTIONS.
Run: .venv/bin/python -m tests.measure_health [N ...]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.held_connections import HeldConnections
from tests.support.ports import free_port

COMMAND = Path(sys.executable).parent / "iam-create-access-key"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def probe_once(socket_path: Path) -> tuple[float, int, int]:
    """(processor seconds, peak VmRSS KiB, peak RssAnon KiB) of one `health` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    probe = subprocess.Popen(
        [str(COMMAND), "health", "--health-socket", str(socket_path)], stdout=subprocess.DEVNULL
    )
    peak, anon = 0, 0
    while probe.poll() is None:
        try:
            peak = max(peak, status_kib(probe.pid, "VmRSS"))
            anon = max(anon, status_kib(probe.pid, "RssAnon"))
        except OSError:
            pass
        time.sleep(0.005)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, peak, anon  # sampled: RUSAGE_CHILDREN.ru_maxrss would count the server too


def main(counts: list[int]) -> None:
    folder = Path(tempfile.mkdtemp())
    socket_path, health_port = folder / "health.sock", free_port()
    server = subprocess.Popen(
        [str(COMMAND), "serve", "--port", str(free_port()), "--health-port", str(health_port),
         "--health-socket", str(socket_path)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(4)
        runs = [probe_once(socket_path) for _ in range(5)]
        for cpu, peak, anon in runs:
            print(f"health run: {cpu:.2f} s CPU, peak RSS {peak / 1024:.1f} MiB "
                  f"(anonymous {anon / 1024:.1f} MiB)")  # fmt: skip
        files = len(os.listdir(f"/proc/{server.pid}/fd"))
        print(f"server idle: {status_kib(server.pid, 'VmRSS') // 1024} MiB, {files} open files")
        for count in counts:
            held = HeldConnections(health_port, count)
            time.sleep(3)
            files = len(os.listdir(f"/proc/{server.pid}/fd"))
            rss = status_kib(server.pid, "VmRSS") // 1024
            print(f"{count} idle connections on the health port: {rss} MiB, {files} open files")
            held.release()
            time.sleep(2)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main([int(argument) for argument in sys.argv[1:]] or [16, 256, 512])
