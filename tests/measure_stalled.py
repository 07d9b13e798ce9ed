"""What stalled streams and many connections cost `serve` (issue 20): resident memory and threads
under streams that send headers and never their message, and what the connection cap does to
one connection more. The figures behind the README's "Tenants and load".
Run: .venv/bin/python -m tests.measure_stalled
"""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plugin.serve.server import MAX_CONNECTIONS
from tests.grpc_plugin import PluginProcess
from tests.test_serve_hostile import StalledStreams, resident_kib, threads_of


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


def main() -> None:
    process = PluginProcess()
    try:
        time.sleep(1)
        idle, threads = resident_kib(process), threads_of(process)
        print(f"idle: {idle // 1024} MiB resident, {threads} threads")
        for count, connections in ((1000, 4), (10000, 4), (10000, 64)):
            streams = StalledStreams(process.address, count, connections=connections)
            time.sleep(5)
            held = resident_kib(process)
            print(
                f"{count} stalled streams on {connections} connections: "
                f"{held // 1024} MiB resident (+{(held - idle) // 1024}), "
                f"{threads_of(process)} threads; health: {check(process.address)}"
            )
            streams.release()
            time.sleep(2)
            print(f"  released: {resident_kib(process) // 1024} MiB resident")
        holders = StalledStreams(process.address, MAX_CONNECTIONS, connections=MAX_CONNECTIONS)
        time.sleep(3)
        print(
            f"{MAX_CONNECTIONS} connections held open, one more: health {check(process.address)} "
            "(it waits in the listen backlog)"
        )
        holders.release()
        time.sleep(1)
        print(f"after they close, one more: health {check(process.address)}")
    finally:
        process.stop()


if __name__ == "__main__":
    main()
