"""Measure what the Idempotency Key's settle time is chosen from: how long IAM takes to show a
tag it accepted, and how long an attempt takes from its look to its lease write.

    .venv/bin/python -m tests.measure_lease [--rounds 50] [--late 0.5]

Against moto's server on 127.0.0.1 (which shows a tag in the answer that accepts it), then
through the fault proxy playing an eventually consistent IAM that shows a TagUser `--late`
seconds after accepting it. Prints the median, 99th percentile and largest of each, in ms.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import uuid
from typing import Any

import boto3

from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM


def client_for(url: str) -> Any:
    return boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
    )


def one_round(client: Any, user: str) -> tuple[float, float]:
    """(look to lease written, lease written until shown), in seconds, as the action does it."""
    value = "lease:" + uuid.uuid4().hex[:16]
    looked = time.monotonic()
    client.list_user_tags(UserName=user)
    client.list_access_keys(UserName=user)
    sent = time.monotonic()
    client.tag_user(UserName=user, Tags=[{"Key": "iam-create-access-key/m", "Value": value}])
    written = time.monotonic()
    while True:
        tags = client.list_user_tags(UserName=user)["Tags"]
        if any(tag["Value"] == value for tag in tags):
            return written - looked, time.monotonic() - sent
        time.sleep(0.005)


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"| {name} | {len(ordered)} | {statistics.median(ordered) * 1000:.1f} | "
        f"{p99 * 1000:.1f} | {ordered[-1] * 1000:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--late", type=float, default=0.5)
    arguments = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    iam = LocalIAM()
    proxy = FaultProxy(iam.url)
    try:
        print("| measured | rounds | median ms | p99 ms | max ms |")
        print("|---|---|---|---|---|")
        for name, url, late in (
            ("moto", iam.url, 0.0),
            (f"proxy, TagUser shown {arguments.late:g} s late", proxy.url, arguments.late),
        ):
            proxy.show_late(late, "TagUser")
            client, user = client_for(url), iam.new_user()
            rounds = [one_round(client, user) for _ in range(arguments.rounds)]
            report(f"{name}: look to lease written", [gap for gap, _ in rounds])
            report(f"{name}: lease written until shown", [shown for _, shown in rounds])
    finally:
        proxy.stop()
        iam.stop()


if __name__ == "__main__":
    main()
