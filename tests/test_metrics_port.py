"""The metrics port as a cluster uses it: a port it cannot have stops `serve` before it says it
is serving; what Prometheus scrapes (buckets up to --max-call-seconds, no *_created series,
process metrics); idle connections that hold no thread."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import run_cli
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import LocalIAM
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.serve_metrics import METRICS_LINE, scrape_text, until


def test_a_metrics_port_in_use_stops_it_before_it_serves() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        completed = run_cli(
            "serve", "--port", "0", "--metrics-port", str(port), env=dict(os.environ), timeout=30
        )
    finally:
        taken.close()
    assert completed.returncode == 2
    assert completed.stderr == (
        f"iam-create-access-key: error: cannot serve metrics on 127.0.0.1:{port}: the port is "
        "in use\n"
    )


def test_a_metrics_host_that_is_no_address_stops_it_in_one_line() -> None:
    completed = run_cli(
        "serve", "--port", "0", "--metrics-port", "0", "--metrics-host", "10.255.255.1",
        env=dict(os.environ), timeout=30,
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr == (
        "iam-create-access-key: error: cannot serve metrics on 10.255.255.1:0: the host is not "
        "an address of this machine\n"
    )


def test_what_prometheus_scrapes(iam: LocalIAM) -> None:
    process = PluginProcess("--metrics-port", "0", "--grace", "60", "--max-call-seconds", "45")
    try:
        user = iam.new_user()
        answer = process.stub().ExecuteAction(
            execute_request({"user_name": user}, iam.connection()), timeout=30
        )
        assert answer.error_code == 0, answer.error_message
        until(lambda: METRICS_LINE.search(process.text()), what="no metrics line")
        url = METRICS_LINE.search(process.text()).group(1)  # type: ignore[union-attr]
        text = scrape_text(url)
    finally:
        process.stop()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    bounds = [
        sample.labels["le"]
        for sample in families["iam_create_access_key_execute_action_seconds"].samples
        if sample.name.endswith("_bucket")
    ]
    assert bounds[-3:] == ["30.0", "45.0", "+Inf"]  # the last bucket is the longest call
    series = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert "iam_create_access_key_keys_created_total" in series
    assert [name for name in series if name.endswith("_created")] == []
    for name in ("process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds"):
        assert name in families, name
    assert families["process_resident_memory_bytes"].samples[0].value > 0


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_idle_connections_hold_no_thread_and_never_lock_a_scrape_out(tmp_path: Path) -> None:
    metrics_port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve", "--port", "0", "--metrics-port",
         str(metrics_port)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        assert server.stderr is not None
        assert "serving" in server.stderr.readline()
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert "iam_create_access_key_calls_in_flight" in scrape_text(url)
        before = threads_of(server.pid)
        for _ in range(500):  # connections that never send a request
            idle.append(socket.create_connection(("127.0.0.1", metrics_port), timeout=10))
        assert "iam_create_access_key_calls_in_flight" in scrape_text(url)
        assert threads_of(server.pid) <= before + 2
        # the oldest were closed to make room: the server holds a bounded number
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""
    finally:
        for connection in idle:
            connection.close()
        server.terminate()
        server.wait(30)
