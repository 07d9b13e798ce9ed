"""Exactly once when attempts with the same Idempotency Key overlap: the lease.

Against moto through the fault proxy. Two `serve` processes (as a runner's retry lands on
another replica during a rolling update) and four calls on one server go through the real
gRPC door, since that is where the issue was seen; the eventually consistent IAM and the
killed or slow attempts run the engine interface in threads (the lease lives in the action, and
a process of its own adds nothing to what is shown there). Each test ends on what IAM holds:
one key per token, every key delivered still exists, none that no answer delivered.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plugin import execute
from plugin.invocation import lease
from plugin.invocation.idempotency import tag_key
from tests.support import fault_proxy as faults
from tests.support.fault_proxy import FaultProxy
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import LocalIAM

# Moto is consistent: at the same moment and at offsets of a few milliseconds, both attempts
# look before either's lease is written, or the later one sees the earlier's lease.
OFFSETS = [0.0] * 8 + [0.001, 0.002, 0.003, 0.005, 0.008, 0.013, 0.021, 0.034]
BUSY = re.compile(
    r'CreateAccessKey failed for user "[\w-]+": an attempt with this idempotency key is under '
    r"way until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; retry after it \(this attempt created and "
    r"deleted nothing\)"
)
SAME_TIME = re.compile(
    r'CreateAccessKey failed for user "[\w-]+": another attempt with this idempotency key ran at '
    r"the same time; retry after it \(this attempt created and deleted nothing\)"
)
TAKEN_OVER = re.compile(
    r'CreateAccessKey failed for user "[\w-]+": another attempt with this idempotency key took '
    r"it over \(its lease runs until [\dT:Z-]+\), so this attempt's key is not handed out; "
    r"retry after it; key \w+ was deleted, so nothing is left behind"
)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PluginProcess, PluginProcess]]:
    first, second = PluginProcess(), PluginProcess()
    yield first, second
    first.stop()
    second.stop()


def at_once(calls: list[Callable[[], tuple[int, str, str]]], offsets: list[float]) -> list[Any]:
    """Run `calls` in threads released together, each after its offset; their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        if offsets[index]:
            time.sleep(offsets[index])
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def over_grpc(server: PluginProcess, parameters: dict[str, str], connection: dict[str, str]) -> Any:
    def call() -> tuple[int, str, str]:
        response = server.stub().ExecuteAction(execute_request(parameters, connection), timeout=60)
        return response.error_code, response.result, response.error_message

    return call


def by_engine(parameters: dict[str, str], connection: dict[str, str]) -> Any:
    def call() -> tuple[int, str, str]:
        response = execute({"parameters": parameters, "connection": connection})
        result = json.dumps(response["result"]) if response["result"] is not None else ""
        return response["error_code"], result, response["error_message"]

    return call


def assert_one_key_for_the_token(
    iam: LocalIAM, user: str, answers: list[tuple[int, str, str]]
) -> str:
    """Exactly one answer is a success; the others say why (code 4); IAM holds that key only."""
    delivered = [
        json.loads(result)["AccessKey"]["AccessKeyId"] for code, result, _ in answers if code == 0
    ]
    refusals = [message for code, _, message in answers if code != 0]
    assert len(delivered) == 1, answers
    for code, _, message in answers:
        if code != 0:
            assert code == 4, message
            assert any(p.fullmatch(message) for p in (BUSY, SAME_TIME, TAKEN_OVER)), message
    assert len(refusals) == len(answers) - 1
    assert iam.key_ids(user) == delivered  # it exists, and no key that no answer delivered
    return delivered[0]


def test_two_servers_with_the_same_token_at_once_and_at_offsets_leave_one_key(
    iam: LocalIAM, proxy: FaultProxy, servers: tuple[PluginProcess, PluginProcess]
) -> None:
    connection = iam.connection(endpoint_url=proxy.url)
    for offset in OFFSETS:
        user, token = iam.new_user(), f"run-{uuid.uuid4().hex[:8]}/step-1"
        parameters = {"user_name": user, "idempotency_key": token}
        calls = [over_grpc(server, parameters, connection) for server in servers]

        answers = at_once(calls, [0.0, offset])

        key_id = assert_one_key_for_the_token(iam, user, answers)
        assert {
            tag["Key"]: tag["Value"] for tag in iam.admin.list_user_tags(UserName=user)["Tags"]
        } == {tag_key(token): key_id}


def test_four_at_once_on_one_server_leave_one_key(
    iam: LocalIAM, proxy: FaultProxy, servers: tuple[PluginProcess, PluginProcess]
) -> None:
    connection = iam.connection(endpoint_url=proxy.url)
    for _ in range(4):
        user, token = iam.new_user(), f"run-{uuid.uuid4().hex[:8]}/step-4"
        parameters = {"user_name": user, "idempotency_key": token}

        answers = at_once([over_grpc(servers[0], parameters, connection)] * 4, [0.0] * 4)

        assert_one_key_for_the_token(iam, user, answers)


def test_on_an_iam_that_shows_tags_late_the_settle_time_follows_it(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """IAM accepts a tag at once and shows it 0.5 s later: the lease waits for its own write
    to show and then as long again, so both attempts read the same winner."""
    proxy.show_late(0.5, "TagUser", "UntagUser")
    connection = iam.connection(endpoint_url=proxy.url)
    for offset in (0.0, 0.0, 0.005, 0.02):
        user, token = iam.new_user(), f"run-{uuid.uuid4().hex[:8]}/late"
        parameters = {"user_name": user, "idempotency_key": token}

        answers = at_once([by_engine(parameters, connection)] * 2, [0.0, offset])

        assert_one_key_for_the_token(iam, user, answers)


def test_a_slow_attempt_keeps_its_lease_and_the_other_deletes_nothing(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user, token = iam.new_user(), "t-slow"
    parameters = {"user_name": user, "idempotency_key": token}
    connection = iam.connection(endpoint_url=proxy.url)
    proxy.inject("CreateAccessKey", faults.hold_after_forward(3))
    mark = proxy.mark()
    slow: list[tuple[int, str, str]] = []
    first = threading.Thread(target=lambda: slow.append(by_engine(parameters, connection)()))
    first.start()
    deadline = time.monotonic() + 30
    while not any(e.upstream_body for e in proxy.since(mark) if e.action == "CreateAccessKey"):
        assert time.monotonic() < deadline, "the create never reached IAM"
        time.sleep(0.05)
    held = lease.parse(iam.admin.list_user_tags(UserName=user)["Tags"][0]["Value"])
    assert held is not None

    code, _, message = by_engine(parameters, connection)()  # while the first waits for IAM

    first.join(60)
    assert code == 4
    assert message == (
        f'CreateAccessKey failed for user "{user}": an attempt with this idempotency key is '
        f"under way until {held.until:%Y-%m-%dT%H:%M:%SZ}; retry after it (this attempt "
        "created and deleted nothing)"
    )
    actions = [exchange.action for exchange in proxy.since(mark)]
    assert actions.count("CreateAccessKey") == 1
    assert "DeleteAccessKey" not in actions
    assert_one_key_for_the_token(iam, user, [*slow, (code, "", message)])


def foreign_lease() -> str:
    """Another attempt's lease, as it would read after taking the token over."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return lease.Lease("f" * 16, now, now + dt.timedelta(seconds=60)).value()


@pytest.mark.parametrize(
    ("action", "before"),
    [("CreateAccessKey", 0), ("TagUser", 1)],
    ids=["lost-before-recording", "lost-before-answering"],
)
def test_an_attempt_that_lost_its_lease_deletes_its_key_and_never_succeeds(
    iam: LocalIAM, proxy: FaultProxy, action: str, before: int
) -> None:
    """Another attempt takes the token over while this one creates (or records) its key."""
    user, token = iam.new_user(), "t-lost"
    other = foreign_lease()

    def take_over() -> None:
        iam.admin.tag_user(UserName=user, Tags=[{"Key": tag_key(token), "Value": other}])

    passing = [faults.Fault("pass", forward=True)] * before
    proxy.inject(action, *passing, faults.Fault("taken over", forward=True, meanwhile=take_over))
    mark = proxy.mark()

    response = by_engine(
        {"user_name": user, "idempotency_key": token}, iam.connection(endpoint_url=proxy.url)
    )()

    code, _, message = response
    created = re.search(
        rb"<AccessKeyId>(\w+)</AccessKeyId>",
        next(e.upstream_body for e in proxy.since(mark) if e.action == "CreateAccessKey"),
    )
    assert created is not None
    until = lease.parse(other).until  # type: ignore[union-attr]
    assert code == 4
    assert message == (
        f'CreateAccessKey failed for user "{user}": another attempt with this idempotency key '
        f"took it over (its lease runs until {until:%Y-%m-%dT%H:%M:%SZ}), so this attempt's key "
        f"is not handed out; retry after it; key {created.group(1).decode()} was deleted, so "
        "nothing is left behind"
    )
    assert iam.key_ids(user) == []
    tags = {tag["Key"]: tag["Value"] for tag in iam.admin.list_user_tags(UserName=user)["Tags"]}
    assert tags == {tag_key(token): other}  # the new holder's lease is left as it is


def test_a_failed_attempt_ends_its_lease_so_a_retry_goes_on_at_once(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user, token = iam.new_user(), "t-ended"
    parameters = {"user_name": user, "idempotency_key": token}
    connection = iam.connection(endpoint_url=proxy.url)
    proxy.inject("CreateAccessKey", faults.refuse("AccessDenied"))

    failed = by_engine(parameters, connection)()
    retried = by_engine(parameters, connection)()

    assert failed[0] == 3, failed
    assert retried[0] == 0, retried
    assert "ReplacedAccessKeyId" not in json.loads(retried[1])
    assert_one_key_for_the_token(iam, user, [retried])


def test_a_dead_lease_of_another_token_that_left_no_key_is_pruned(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """Each token takes one of the user's 50 tags; one whose attempt is over and left nothing
    to find is removed, as a tag naming a deleted key is."""
    user = iam.new_user()
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    dead = lease.Lease("d" * 16, long_ago, long_ago + dt.timedelta(minutes=2)).value()
    iam.admin.tag_user(UserName=user, Tags=[{"Key": tag_key("t-dead"), "Value": dead}])

    answer = by_engine(
        {"user_name": user, "idempotency_key": "t-live"}, iam.connection(endpoint_url=proxy.url)
    )()

    assert answer[0] == 0, answer
    key_id = json.loads(answer[1])["AccessKey"]["AccessKeyId"]
    tags = {tag["Key"]: tag["Value"] for tag in iam.admin.list_user_tags(UserName=user)["Tags"]}
    assert tags == {tag_key("t-live"): key_id}


def test_with_a_vault_an_attempt_under_way_is_not_answered_for_from_the_vault(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """The vault holds the earlier key, but an attempt under way is replacing it: a third
    attempt must not hand out a reference to a key about to be deleted."""
    user = iam.new_user()
    parameters = {"user_name": user, "idempotency_key": "t-v", "vault": f"ssm:/ci/{user}"}
    connection = iam.connection(endpoint_url=proxy.url)
    first = by_engine(parameters, connection)()
    assert first[0] == 0, first
    key_id = json.loads(first[1])["AccessKey"]["AccessKeyId"]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    under_way = lease.Lease("e" * 16, now, now + dt.timedelta(seconds=60), replacing=key_id)
    iam.admin.tag_user(UserName=user, Tags=[{"Key": tag_key("t-v"), "Value": under_way.value()}])

    code, _, message = by_engine(parameters, connection)()

    assert code == 4
    assert message == (
        f'CreateAccessKey failed for user "{user}": an attempt with this idempotency key is '
        f"under way until {under_way.until:%Y-%m-%dT%H:%M:%SZ}; retry after it (this attempt "
        "created and deleted nothing)"
    )
    assert iam.key_ids(user) == [key_id]
