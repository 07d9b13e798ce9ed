"""What stalled streams and many connections cost `serve` (issue 20): resident memory and threads
under streams that send headers and never their message, and what the connection cap does to
one connection more. The figures behind the README's "Tenants and load".
Run: .venv/bin/python -m tests.measure_stalled
"""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plugin.hosts.serve.server import MAX_CONNECTIONS
from tests.support.grpc_plugin import PluginProcess
from tests.support.stalled_streams import StalledStreams, resident_kib, threads_of


def check(target: str, timeout: float = 3) -> str:
    channel = grpc.insecure_channel(target, options=[("measure.fresh", time.time())])
    try:
        health = health_pb2_grpc.HealthStub(channel)
        health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        return "SERVING"
    except grpc.RpcError as error:
        return error.code().name
    finally:
        channel.close()


class Holder:
    """Stalled streams held by a process of their own: killing it closes its connections (a
    grpc.aio channel closed in the same process may leave its connection open)."""

    def __init__(self, address: str, count: int, connections: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.measure_stalled", "hold", address, str(count),
             str(connections)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "holding"

    def release(self) -> None:
        self.process.kill()
        self.process.wait()


def hold(address: str, count: int, connections: int) -> None:
    StalledStreams(address, count, connections=connections)
    print("holding", flush=True)
    time.sleep(3600)


def main() -> None:
    process = PluginProcess()
    try:
        time.sleep(1)
        idle, threads = resident_kib(process), threads_of(process)
        print(f"idle: {idle // 1024} MiB resident, {threads} threads")
        for count, connections in ((1000, 4), (10000, 4), (10000, MAX_CONNECTIONS)):
            streams = Holder(process.address, count, connections)
            time.sleep(5)
            held = resident_kib(process)
            print(
                f"{count} stalled streams on {connections} connections: "
                f"{held // 1024} MiB resident (+{(held - idle) // 1024}), "
                f"{threads_of(process)} threads; health on a new connection: "
                f"{check(process.address)}"
            )
            streams.release()
            time.sleep(2)
            print(
                f"  released: {resident_kib(process) // 1024} MiB resident; health on a new "
                f"connection: {check(process.address)}"
            )
    finally:
        process.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["hold"]:
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
