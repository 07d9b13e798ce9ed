"""How long a well-behaved caller's read waits behind stalled streams (serve.reads): N streams
that send headers and never their message, over C connections, then three health checks on
the main port, on a connection of their own, one after the other. The figures behind the
README's "Tenants and load" (the read gate).
Run: .venv/bin/python -m tests.measure_read_gate [N [C]]
"""

from __future__ import annotations

import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.grpc_plugin import PluginProcess
from tests.support.stalled_streams import StalledStreams


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3100
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 31
    process = PluginProcess()
    try:
        health = health_pb2_grpc.HealthStub(process.channel())
        health.Check(health_pb2.HealthCheckRequest(), timeout=10)  # its connection, now
        streams = StalledStreams(process.address, count, connections=connections)
        time.sleep(3)
        waits = []
        for _ in range(3):
            started = time.monotonic()
            try:
                health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                waits.append(f"{time.monotonic() - started:.2f} s")
            except grpc.RpcError as error:
                waits.append(error.code().name)
        ended = len(streams.codes)
        streams.release()
    finally:
        process.stop()
    print(
        f"{count} stalled streams on {connections} connections, 3 s after they started: "
        f"health on the main port answered after {', '.join(waits)}; {ended} of them ended"
    )


if __name__ == "__main__":
    main()
