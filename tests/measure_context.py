"""What large contexts cost `serve` (issue 20): the red team's attack (bigctx_mem.py), N
clients each sending ROUNDS ExecuteActions with a 4 MiB context at once, against a serve with a
given --max-bytes-in-flight; its resident memory (peak while they run, and after), and how many
calls were answered or refused. The figures behind operator.settings' DEFAULT_MAX_BYTES_IN_FLIGHT.
Run: .venv/bin/python -m tests.measure_context [N [ROUNDS [MAX_BYTES_IN_FLIGHT]]]
"""

from __future__ import annotations

import collections
import sys
import threading
import time

import grpc

from plugin.hosts.serve.protocol import integration_pack_pb2_grpc as pb_grpc
from plugin.hosts.serve.translation import MAX_CONTEXT_BYTES
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.stalled_streams import PeakResident, resident_kib

# A connection that fails at once (nothing listens on port 9 of loopback): the call is answered
# with its error and its context echoed, as the red team's was; no endpoint's memory counts.
DEAD = {
    "access_key_id": "AKIALOCAL0000000000",
    "secret_access_key": "local-only",
    "region": "us-east-1",
    "endpoint_url": "http://127.0.0.1:9",
}


def attack(process: PluginProcess, clients: int, rounds: int) -> tuple[int, dict[str, int]]:
    """Peak resident KiB while the clients run, and what their calls ended with."""
    outcomes: collections.Counter[str] = collections.Counter()

    def client(number: int) -> None:
        options = [("grpc.max_receive_message_length", 8 << 20), ("measure.client", number)]
        with grpc.insecure_channel(process.address, options=options) as channel:
            stub = pb_grpc.PluginStub(channel)
            for _ in range(rounds):
                request = execute_request(
                    {"user_name": "nobody"}, DEAD, context=b"y" * MAX_CONTEXT_BYTES
                )
                try:
                    stub.ExecuteAction(request, timeout=60)
                    outcomes["answered"] += 1
                except grpc.RpcError as error:
                    outcomes[error.code().name] += 1

    with PeakResident(process) as peak:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return peak.kib, dict(outcomes)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    budget = sys.argv[3:4]
    process = PluginProcess(
        "--max-calls", "32", *(["--max-bytes-in-flight", budget[0]] if budget else [])
    )
    try:
        time.sleep(1)
        idle = resident_kib(process)
        peak, outcomes = attack(process, clients, rounds)
        time.sleep(3)
        after = resident_kib(process)
    finally:
        process.stop()
    print(
        f"{clients} clients x {rounds} rounds of a {MAX_CONTEXT_BYTES}-byte context, "
        f"--max-bytes-in-flight {budget[0] if budget else 'default'}: idle {idle // 1024} MiB, "
        f"peak {peak // 1024} MiB, 3 s after {after // 1024} MiB; {outcomes}"
    )


if __name__ == "__main__":
    main()
