"""Many invocations at once in one process: every result belongs to its own request."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import boto3

from plugin import execute
from plugin.invocation.create import capture_raw_bodies, create_once
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM

THREADS, USERS, KEYS_EACH = 32, 16, 2


def test_concurrent_invocations_keep_their_own_results(iam: LocalIAM) -> None:
    users = [iam.new_user() for _ in range(USERS)]
    jobs = [user for user in users for _ in range(KEYS_EACH)]

    def invoke(user: str) -> tuple[str, dict]:  # type: ignore[type-arg]
        return user, execute({"parameters": {"user_name": user}, "connection": iam.connection()})

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(invoke, jobs))

    delivered: dict[str, list[str]] = {user: [] for user in users}
    for user, response in outcomes:
        assert response["error_code"] == 0, response["error_message"]
        key = response["result"]["AccessKey"]
        assert key["UserName"] == user
        delivered[user].append(key["AccessKeyId"])
    for user in users:
        assert iam.key_ids(user) == sorted(delivered[user])  # none lost, none doubled
    all_ids = [key_id for ids in delivered.values() for key_id in ids]
    assert len(set(all_ids)) == USERS * KEYS_EACH


def test_the_raw_body_capture_is_safe_on_a_shared_client(iam: LocalIAM) -> None:
    shared = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=iam.url,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
    )
    capture_raw_bodies(shared)
    users = [iam.new_user() for _ in range(USERS)]
    jobs = [user for user in users for _ in range(KEYS_EACH)]

    with ThreadPoolExecutor(THREADS) as pool:
        bodies = list(pool.map(lambda user: (user, create_once(shared, user)), jobs))

    seen = set()
    for user, body in bodies:
        assert re.search(rb"<UserName>([^<]+)</UserName>", body).group(1).decode() == user  # type: ignore[union-attr]
        key_id = re.search(rb"<AccessKeyId>(\w+)</AccessKeyId>", body).group(1)  # type: ignore[union-attr]
        assert key_id not in seen
        seen.add(key_id)
    assert len(seen) == USERS * KEYS_EACH
