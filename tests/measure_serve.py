"""Resident memory and processor time of `serve`, idle and under 32 concurrent clients creating
keys on the local IAM endpoint: the figures behind deploy/kubernetes/deployment.yaml's
resources. Run: .venv/bin/python -m tests.measure_serve
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
from pathlib import Path

from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import LocalIAM

CLIENTS = 32
CALLS = 640


def main() -> None:
    iam = LocalIAM()
    process = PluginProcess()
    pid = process.process.pid

    def resident_mib() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
        return 0

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    time.sleep(1)
    idle = resident_mib()
    stub = process.stub()
    peak, stop = [idle], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], resident_mib())
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    users = [iam.new_user() for _ in range(CLIENTS)]

    def one(index: int) -> int:
        user = users[index % CLIENTS]
        response = stub.ExecuteAction(
            execute_request({"user_name": user}, iam.connection()), timeout=60
        )
        if response.error_code == 0:  # make room for the next call on this user
            key_id = json.loads(response.result)["AccessKey"]["AccessKeyId"]
            iam.admin.delete_access_key(UserName=user, AccessKeyId=key_id)
        return int(response.error_code)

    cpu_before, started = cpu_seconds(), time.time()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        codes = list(pool.map(one, range(CALLS)))
    cpu_used, wall = cpu_seconds() - cpu_before, time.time() - started
    stop.set()
    process.stop()
    iam.stop()
    print(f"{CALLS} calls, {CLIENTS} clients, error codes {sorted(set(codes))}")
    print(f"resident memory: idle {idle} MiB, peak {peak[0]} MiB")
    print(f"processor: {cpu_used:.1f} s over {wall:.1f} s = {cpu_used / wall:.2f} cores")


if __name__ == "__main__":
    main()
