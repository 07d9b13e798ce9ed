"""What N calls in flight hold in `serve`: resident memory, threads and open files, each call
held by an endpoint that drips its answer. The figures behind serve's --max-calls bound
(plugin/hosts/operator/settings.py MOST_CALLS). Run: .venv/bin/python -m tests.measure_in_flight 1000
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
from pathlib import Path

import grpc

from tests.support.dripping_endpoint import DrippingEndpoint
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import LocalIAM


def main(calls: int) -> None:
    iam = LocalIAM()
    drip = DrippingEndpoint(seconds=8.0)
    process = PluginProcess(
        "--allow-endpoint", drip.url, "--max-calls", "1024", local_endpoints=False
    )
    proc = Path(f"/proc/{process.process.pid}")

    def sample() -> tuple[int, int, int]:
        status = (proc / "status").read_text().splitlines()
        rss = next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))
        return rss, len(list((proc / "task").iterdir())), len(list((proc / "fd").iterdir()))

    time.sleep(1)
    idle = sample()
    stub = process.stub()
    connection = {**iam.connection(), "endpoint_url": drip.url}

    def one(index: int) -> str:
        request = execute_request({"user_name": f"m{index}", "wait_for_user": "0"}, connection)
        try:
            return str(stub.ExecuteAction(request, timeout=30).error_code)
        except grpc.RpcError as error:
            return str(error.code())

    peak = idle
    with concurrent.futures.ThreadPoolExecutor(calls) as pool:
        answers = [pool.submit(one, index) for index in range(calls)]
        for _ in range(12):
            time.sleep(0.5)
            now = sample()
            peak = (max(peak[0], now[0]), max(peak[1], now[1]), max(peak[2], now[2]))
        for answer in answers:
            answer.result()
    process.terminate()
    print(
        f"{calls} calls in flight: {idle[0]} MiB idle, {peak[0]} MiB peak "
        f"({(peak[0] - idle[0]) / calls:.2f} MiB a call), {peak[1]} threads, "
        f"{peak[2]} open files"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
