"""The benchmark: the action against plain boto3 and the AWS CLI, on this machine, in one run.

    .venv/bin/python -m tests.benchmark            (or: make bench)

1. Cold, whole process, against moto's server: `iam-create-access-key run`, a minimal boto3
   script, and `aws iam create-access-key`, interleaved, wall time and peak RSS.
2. Warm, in process, against a canned endpoint (tests/support/canned_iam.py): the engine function vs
   `create_access_key` on a cached boto3 client, interleaved call by call.
3. Scale: the warm comparison with 1, 4 and 16 threads (calls per second), and
   `--regions '*'` against one region.

It prints medians and ratios; it asserts nothing (the bars are for people to read).
The driver imports nothing heavy until the cold phase is over: a child forked from a big
process would report the parent's memory as its own peak.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "benchmark-secret-for-a-local-endpoint"
BARS = {
    "cold vs boto3": 1.10,
    "cold vs AWS CLI": 0.70,
    "warm vs boto3": 1.10,
}


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    if options.only == "grpc":  # the serve table alone: the gRPC phase, and nothing cold
        canned = _Server([sys.executable, "-m", "tests.support.canned_iam"])
        try:
            over_grpc = _grpc(canned.url, options.calls, options.scale_calls)
        finally:
            canned.stop()
        _report_grpc(over_grpc)
        return 0
    moto = _Server(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(_free_port())], moto=True
    )
    canned = _Server([sys.executable, "-m", "tests.support.canned_iam"])
    try:
        cold = _cold(moto.url, options.runs, options.warmup)
        warm = _warm(canned.url, options.calls)
        scale = _scale(canned.url, options.scale_calls)
        over_grpc = _grpc(canned.url, options.calls, options.scale_calls)
    finally:
        moto.stop()
        canned.stop()
    _report(cold, warm, scale)
    _report_grpc(over_grpc)
    return 0


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmark")
    parser.add_argument("--runs", type=int, default=12, help="counted cold runs per command")
    parser.add_argument("--warmup", type=int, default=2, help="cold runs per command not counted")
    parser.add_argument("--calls", type=int, default=2000, help="warm calls per contender")
    parser.add_argument("--scale-calls", type=int, default=400, help="calls per scale point")
    parser.add_argument("--only", choices=("all", "grpc"), default="all", help="grpc: serve alone")
    return parser.parse_args(argv)


class _Server:
    """A local endpoint in a process of its own."""

    def __init__(self, command: list[str], moto: bool = False) -> None:
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).parent.parent,
        )
        if moto:
            port = command[-1]
        else:
            assert self.process.stdout is not None
            port = self.process.stdout.readline().decode().strip()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{command[2]} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _create_user(endpoint: str) -> str:
    """CreateUser on moto with the standard library (moto reads the service from the scope)."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    request = urllib.request.Request(  # noqa: S310 (an http URL on loopback)
        endpoint,
        data=f"Action=CreateUser&UserName={name}&Version=2010-05-08".encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
    return name


COLD: dict[str, Callable[[str], list[str]]] = {
    "action": lambda user: [
        str(BIN / "iam-create-access-key"),
        "run",
        "--regions",
        "us-east-1",
        "--user-name",
        user,
    ],
    "boto3": lambda user: [
        sys.executable,
        "-c",
        f"import boto3\nboto3.client('iam').create_access_key(UserName={user!r})",
    ],
    "AWS CLI": lambda user: [str(BIN / "aws"), "iam", "create-access-key", "--user-name", user],
}


def _cold(endpoint: str, runs: int, warmup: int) -> dict[str, tuple[float, float]]:
    """Median wall seconds and median peak RSS (MiB) of each command, interleaved A B C."""
    if not (BIN / "aws").exists() and shutil.which("aws") is None:
        raise SystemExit("the AWS CLI is not installed in this environment: pip install awscli")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_IAM=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    walls: dict[str, list[float]] = {name: [] for name in COLD}
    peaks: dict[str, list[float]] = {name: [] for name in COLD}
    for round_ in range(warmup + runs):
        for name, command in COLD.items():
            user = _create_user(endpoint)
            started = time.perf_counter()
            child = subprocess.Popen(
                command(user), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                assert child.stderr is not None
                raise SystemExit(f"{name} failed: {child.stderr.read().decode()[-500:]}")
            if round_ >= warmup:
                walls[name].append(wall)
                peaks[name].append(usage.ru_maxrss / 1024)
    return {name: (statistics.median(walls[name]), statistics.median(peaks[name])) for name in COLD}


def _contenders(endpoint: str) -> dict[str, Callable[[], Any]]:
    import boto3

    from plugin import execute

    connection = {
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "region": "us-east-1",
        "endpoint_url": endpoint,
    }
    client = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )

    def action(regions: str = "us-east-1", **extra: Any) -> Any:
        parameters = {"regions": regions, "user_name": "bench"}
        response = execute({"parameters": parameters, "connection": connection, **extra})
        assert response["error_code"] == 0, response["error_message"]
        return response

    return {
        "action": action,
        "boto3": lambda: client.create_access_key(UserName="bench"),
        "action, regions '*'": lambda: action("*"),
        "action, timeout 30s": lambda: action(timeout=30),
    }


# Each comparison is its own A B A B run: a contender that hands calls to a worker thread
# disturbs whatever runs right after it, so it is never interleaved with the main pair.
WARM_PAIRS = [
    ("action", "boto3"),
    ("action, regions '*'", "action"),
    ("action, timeout 30s", "boto3"),
]


def _warm(endpoint: str, calls: int) -> dict[str, float]:
    """Median seconds per call of each contender, measured against its pair, call by call."""
    contenders = _contenders(endpoint)
    medians: dict[str, float] = {}
    for pair in WARM_PAIRS:
        times: dict[str, list[float]] = {name: [] for name in pair}
        for _ in range(max(20, calls // 10)):  # warm-up: clients made, caches filled
            for name in pair:
                contenders[name]()
        for _ in range(calls):
            for name in pair:
                started = time.perf_counter()
                contenders[name]()
                times[name].append(time.perf_counter() - started)
        for name in pair:  # a contender's own figure is from its first pair
            medians.setdefault(name, statistics.median(times[name]))
        # and each pair's ratio from that pair alone, measured in the same minute
        medians[f"{pair[0]} / {pair[1]}"] = statistics.median(times[pair[0]]) / statistics.median(
            times[pair[1]]
        )
    return medians


def _scale(endpoint: str, calls: int) -> dict[tuple[str, int], float]:
    """Calls per second with 1, 4 and 16 threads sharing one process."""
    contenders = _contenders(endpoint)
    rates: dict[tuple[str, int], float] = {}
    for threads in (1, 4, 16):
        for name in ("action", "boto3"):
            call = contenders[name]
            per_thread = max(1, calls // threads)

            def work(call: Callable[[], Any] = call, count: int = per_thread) -> None:
                for _ in range(count):
                    call()

            workers = [threading.Thread(target=work) for _ in range(threads)]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            rates[(name, threads)] = per_thread * threads / (time.perf_counter() - started)
    return rates


GRPC_DEADLINE_SECONDS = 30.0  # a runner always sets one; the server keeps within it


def _grpc(endpoint: str, calls: int, scale_calls: int) -> dict[str, float]:
    """ExecuteAction over loopback gRPC (`serve` in its own process, a deadline on every call)
    against a warm in-process boto3 call, interleaved call by call; then calls per second with
    1, 8 and 32 concurrent clients, each with its own channel."""
    import grpc

    from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
    from plugin.hosts.serve.protocol import integration_pack_pb2_grpc as pb_grpc

    port = _free_port()
    server = subprocess.Popen(
        [
            str(BIN / "iam-create-access-key"),
            "serve",
            "--port",
            str(port),
            "--allow-endpoint",
            endpoint,
        ],
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert server.stderr is not None
        server.stderr.readline()  # the ready line
        request = pb.ExecuteActionRequest(
            name="iam_create_access_key",
            parameters={"regions": "us-east-1", "user_name": "bench"},
            connections={
                "aws": pb.ConnectionInstance(
                    data={
                        "access_key_id": KEY_ID,
                        "secret_access_key": SECRET,
                        "region": "us-east-1",
                        "endpoint_url": endpoint,
                    }
                )
            },
        )

        def client() -> Callable[[], Any]:
            stub = pb_grpc.PluginStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

            def call() -> Any:
                response = stub.ExecuteAction(request, timeout=GRPC_DEADLINE_SECONDS)
                assert response.error_code == 0, response.error_message
                return response

            return call

        in_process = _contenders(endpoint)
        probe = pb_grpc.PluginStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        figures = _interleaved({"gRPC": client(), "boto3": in_process["boto3"]}, calls)
        # The decomposition, in a loop of its own (a contender that hands its call to a worker
        # thread disturbs whatever runs right after it): gRPC's own round trip (HealthProbe does
        # no work) and the action in process with a timeout, as serve runs it (its AWS calls in
        # a worker thread). ExecuteAction less both is serve's own share.
        parts = _interleaved(
            {
                "HealthProbe": lambda: probe.HealthProbe(pb.Empty(), timeout=GRPC_DEADLINE_SECONDS),
                "action, timeout": in_process["action, timeout 30s"],
                "boto3 (decomposition loop)": in_process["boto3"],
            },
            calls,
        )
        figures.update(parts)
        for clients in (1, 8, 32):
            callers = [client() for _ in range(clients)]
            per_client = max(1, scale_calls // clients)

            def work(call: Callable[[], Any], count: int = per_client) -> None:
                for _ in range(count):
                    call()

            workers = [threading.Thread(target=work, args=(call,)) for call in callers]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            figures[f"calls/s {clients}"] = per_client * clients / (time.perf_counter() - started)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)


def _interleaved(contenders: dict[str, Callable[[], Any]], calls: int) -> dict[str, float]:
    """Median seconds of each contender, called in turn A B C A B C ... after a warm-up."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(max(20, calls // 10)):
        for call in contenders.values():
            call()
    for _ in range(calls):
        for name, call in contenders.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(times[name]) for name in contenders}


def _report_grpc(figures: dict[str, float]) -> None:
    grpc_call, boto = figures["gRPC"], figures["boto3"]
    print("\n| measure (serve, over loopback gRPC) | ExecuteAction | boto3 | ratio | bar |")
    print("|---|---|---|---|---|")
    print(
        f"| per call, deadline {GRPC_DEADLINE_SECONDS:g} s (median) | {grpc_call * 1e6:.0f} us | {boto * 1e6:.0f} us | {grpc_call / boto:.2f}x | <= 2.0x boto3 (aim 1.5x) |"
    )
    for clients in (1, 8, 32):
        print(
            f"| calls/s, {clients} concurrent client{'s' if clients > 1 else ''} | {figures[f'calls/s {clients}']:.0f} | | | |"
        )
    # The parts, each as a fraction of a boto3 call of its own loop; serve's share is the rest
    # of the ExecuteAction ratio above.
    base = figures["boto3 (decomposition loop)"]
    probe, action = figures["HealthProbe"] / base, figures["action, timeout"] / base
    print(
        "\n| where an ExecuteAction's time goes (medians; each part of a boto3 call) | of boto3 |"
    )
    print("|---|---|")
    for name, value in (
        ("gRPC round trip (HealthProbe: no work)", probe),
        ("the action in process (engine, timeout set: AWS calls in a worker thread)", action),
        (
            "serve's own share (the rest: read, slot, executor, step log, translation, write)",
            grpc_call / boto - probe - action,
        ),
    ):
        print(f"| {name} | {value:.2f}x |")


def _report(
    cold: dict[str, tuple[float, float]],
    warm: dict[str, float],
    scale: dict[tuple[str, int], float],
) -> None:
    action, boto, cli = cold["action"], cold["boto3"], cold["AWS CLI"]
    print("\n| measure | action | boto3 | AWS CLI | action / boto3 | action / AWS CLI | bar |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| cold wall time (median) | {action[0] * 1000:.0f} ms | {boto[0] * 1000:.0f} ms | {cli[0] * 1000:.0f} ms | {action[0] / boto[0]:.2f}x | {action[0] / cli[0]:.2f}x | <= 1.10x boto3, <= 0.70x CLI |"
    )
    print(
        f"| cold peak RSS (median) | {action[1]:.0f} MiB | {boto[1]:.0f} MiB | {cli[1]:.0f} MiB | {action[1] / boto[1]:.2f}x | {action[1] / cli[1]:.2f}x | <= 1.00x CLI |"
    )
    print(
        f"| warm per call (median) | {warm['action'] * 1e6:.0f} us | {warm['boto3'] * 1e6:.0f} us | | {warm['action'] / warm['boto3']:.2f}x | | <= 1.10x boto3 |"
    )
    for threads in (1, 4, 16):
        a, b = scale[("action", threads)], scale[("boto3", threads)]
        bar = ">= 0.90x boto3" if threads == 16 else ""
        print(
            f"| calls/s, {threads} thread{'s' if threads > 1 else ''} | {a:.0f} | {b:.0f} | | {a / b:.2f}x | | {bar} |"
        )
    bounded = warm["action, timeout 30s"]
    print(
        f"| warm per call, request timeout set (calls made in a worker thread) | {bounded * 1e6:.0f} us | | | {warm['action, timeout 30s / boto3']:.2f}x | | (the price of a hard deadline) |"
    )
    star, star_ratio = warm["action, regions '*'"], warm["action, regions '*' / action"]
    print(
        f"| warm per call, regions '*' | {star * 1e6:.0f} us | | | {star_ratio:.2f}x of one region | | same within noise |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
