"""Operating `serve`: Prometheus metrics after a known mix of calls, the server's log as JSON
lines with call ids, and what a new user tripped on (issue 16)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from plugin import execute
from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
from plugin.hosts.serve.translation import engine_request
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.hang_up import never_reading
from tests.support.local_iam import LocalIAM
from tests.support.serve_metrics import METRICS_LINE, until


def serve(started: list[PluginProcess], *arguments: str) -> PluginProcess:
    process = PluginProcess(*arguments)
    started.append(process)
    return process


def scrape(
    process: PluginProcess,
) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    until(lambda: METRICS_LINE.search(process.text()), what="no metrics line")
    url = METRICS_LINE.search(process.text()).group(1)  # type: ignore[union-attr]
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback, ours)
        text = answer.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((f"iam_create_access_key_{name}", tuple(sorted(labels.items()))), 0.0)


def test_a_key_whose_answer_was_never_read_counts_as_undeliverable(
    started: list[PluginProcess], iam: LocalIAM
) -> None:
    """Found by the fifth red team: a key deleted because its written answer was not read in
    time was counted as one whose caller hung up."""
    process = serve(started, "--metrics-port", "0", "--max-call-seconds", "3")
    user = iam.new_user()
    request = execute_request({"user_name": user}, iam.connection()).SerializeToString()
    sock, _ = never_reading(process.port, request)
    try:
        until(
            lambda: value(scrape(process)[1], "keys_deleted_undeliverable_total") == 1,
            what="the unread key not counted as undeliverable",
        )
        samples = scrape(process)[1]
        assert value(samples, "keys_created_total") == 1
        assert value(samples, "keys_deleted_caller_hung_up_total") == 0
        assert iam.key_ids(user) == []
    finally:
        sock.close()


def test_metrics_count_a_known_mix_of_calls(
    started: list[PluginProcess], iam: LocalIAM, proxy: FaultProxy
) -> None:
    process = serve(started, "--metrics-port", "0", "--max-calls", "2")
    stub = process.stub()
    connection = iam.connection(endpoint_url=proxy.url)
    users = [iam.new_user() for _ in range(5)]
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"

    def call(parameters: dict[str, str], timeout: float = 30) -> Any:
        return stub.ExecuteAction(execute_request(parameters, connection), timeout=timeout)

    codes = [call({"user_name": users[0]}).error_code, call({"user_name": users[1]}).error_code]
    codes.append(call({"user_name": ghost, "wait_for_user": "0"}).error_code)  # refused by IAM
    codes.append(call({"user_name": ghost, "wait_for_user": "1"}).error_code)  # and waited
    proxy.inject("UpdateAccessKey", faults.DENY)  # custody: the new key is deleted
    codes.append(call({"user_name": users[2], "status": "Inactive"}).error_code)
    proxy.inject("UpdateAccessKey", faults.DENY)  # ... and cannot be: the key is left
    proxy.inject("DeleteAccessKey", faults.DENY)
    codes.append(call({"user_name": users[3], "status": "Inactive"}).error_code)
    assert codes == [0, 0, 3, 3, 3, 4]

    proxy.inject("CreateAccessKey", faults.hold_after_forward(2))  # the caller hangs up
    mark = proxy.mark()
    cancelled = stub.ExecuteAction.future(
        execute_request({"user_name": users[4]}, connection), timeout=30
    )
    until(lambda: any(e.upstream_body for e in proxy.since(mark)), what="create never sent")
    cancelled.cancel()
    until(lambda: value(scrape(process)[1], "calls_in_flight") == 0, what="not withdrawn")

    busy = [  # both slots, waiting for users that never come; then one call too many
        stub.ExecuteAction.future(
            execute_request({"user_name": f"{ghost}-{i}", "wait_for_user": "30"}, connection),
            timeout=60,
        )
        for i in range(2)
    ]
    until(lambda: value(scrape(process)[1], "calls_in_flight") >= 2, what="slots not taken")
    with pytest.raises(grpc.RpcError) as refused:
        call({"user_name": users[0]}, timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for future in busy:
        future.cancel()
    until(lambda: value(scrape(process)[1], "calls_in_flight") == 0, what="calls still in flight")

    text, samples = scrape(process)
    assert value(samples, "calls_total", rpc="ExecuteAction", error_code="0") == 2
    assert value(samples, "calls_total", rpc="ExecuteAction", error_code="3") == 3
    # the key left, and the three calls whose callers hung up (one with a key, two waiting)
    assert value(samples, "calls_total", rpc="ExecuteAction", error_code="4") == 4
    assert value(samples, "calls_refused_for_capacity_total", rpc="ExecuteAction") == 1
    assert value(samples, "keys_created_total") == 5
    assert value(samples, "keys_deleted_undeliverable_total") == 1
    assert value(samples, "keys_deleted_caller_hung_up_total") == 1
    assert value(samples, "keys_left_total") == 1
    assert value(samples, "execute_action_seconds_count") == 9
    assert value(samples, "wait_for_user_seconds_count") == 3  # the 1 s wait, two cut short
    assert value(samples, "calls_in_flight") == 0
    labels = {
        label
        for key in samples
        if key[0].startswith("iam_create_access_key")
        for label, _ in key[1]
    }
    assert labels <= {"rpc", "error_code", "le"}  # nothing a caller chose
    for user in (*users, ghost):
        assert user not in text
    for key_id in iam.key_ids(users[3]):
        assert key_id not in text


def test_the_servers_log_as_json_lines_with_the_call_id(
    started: list[PluginProcess], iam: LocalIAM, proxy: FaultProxy
) -> None:
    """A create answered after the call gave up (and could not reconcile): the server deletes
    the key and says so, on a JSON line whose call id is the one in the call's log_buffer."""
    process = serve(started, "--log-format", "json")
    user = iam.new_user()
    # IAM's own answer, a byte every 5 ms: no socket read times out, the call's second does
    dripped = dataclasses.replace(faults.rewrite("IAM's answer, dripped", bytes), drip=0.005)
    proxy.inject("CreateAccessKey", dripped)
    proxy.inject("ListAccessKeys", *[faults.DENY] * 3)
    response = process.stub().ExecuteAction(
        execute_request({"user_name": user}, iam.connection(endpoint_url=proxy.url), timeout=1),
        timeout=30,
    )
    assert response.error_code == 4, response.error_message
    (call_id,) = re.findall(r"call (\S+): ExecuteAction", response.log_buffer.decode())
    until(
        lambda: "after the call was given up on" in process.text(),
        what=process.text() + response.error_message + response.log_buffer.decode(),
    )
    assert process.terminate() == 0

    lines = [line for line in process.output if not line.startswith("iam-create-access-key:")]
    records = [json.loads(line) for line in lines]  # every line of the server's log
    assert records
    for record in records:
        assert set(record) >= {"time", "level", "message", "call_id"}
    (deleted,) = [r for r in records if "after the call was given up on" in r["message"]]
    assert deleted["call_id"] == call_id
    assert deleted["level"] == "WARNING"
    assert re.fullmatch(r"deleted key AKIA\w+: IAM created it after .*", deleted["message"])
    assert iam.key_ids(user) == []


# ---- what a new user tripped on -------------------------------------------------------------


def test_a_wait_cut_by_the_steps_time_says_so(iam: LocalIAM, proxy: FaultProxy) -> None:
    """IAM does not show the user for longer than the step has (as real IAM, played by the
    proxy: NoSuchEntity however often it is asked)."""
    proxy.inject("CreateAccessKey", *[faults.refuse("NoSuchEntity", status=404)] * 50)
    response = execute(
        {
            "parameters": {"user_name": iam.new_user(), "wait_for_user": "30"},
            "connection": iam.connection(endpoint_url=proxy.url),
            "timeout": 3,
        }
    )
    assert response["error_code"] == 3
    assert re.search(
        r"\(waited \d\.\ds for IAM to show the user; the step's time ran out first: \d\.\d s of "
        r"its 3 s were left, too few to wait \d\.\d s and try again \(a try needs \d+\.\d s\); "
        r"every answer was NoSuchEntity, so no key was created\)",
        response["error_message"],
    ), response["error_message"]


def test_no_user_name_means_no_wait_for_a_new_user(iam: LocalIAM) -> None:
    """The signing key is unknown: IAM's NoSuchEntity is about the key, not a user to wait for."""
    started = time.monotonic()
    response = execute(
        {
            "parameters": {"regions": "us-east-1", "wait_for_user": "10"},
            "connection": {**iam.connection(), "access_key_id": "AKIAI44QH8DHBEXAMPLE"},
        }
    )
    assert time.monotonic() - started < 5  # not the 10 s of a wait
    assert response["error_code"] == 3
    assert (
        "The Access Key with id AKIAI44QH8DHBEXAMPLE cannot be found" in (response["error_message"])
    )
    assert "waited" not in response["error_message"]


def test_a_short_printable_action_name_is_shown() -> None:
    from plugin.contract.errors import ActionError

    for name, shown in [
        ("aws.iam_create_access_key", "aws.iam_create_access_key"),
        ("x" * 65, "(a name that is not shown)"),
        ("line\nforged", "(a name that is not shown)"),
        ("", "(no name)"),
    ]:
        with pytest.raises(ActionError) as refused:
            engine_request(pb.ExecuteActionRequest(name=name), None)
        assert refused.value.message.endswith(
            f"this plugin serves the action iam_create_access_key, not {shown}"
        )


def test_the_clear_text_refusal_keeps_the_port() -> None:
    response = execute(
        {
            "parameters": {"user_name": "bob"},
            "connection": {
                "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": "s" * 40,
                "endpoint_url": "http://localstack.blink.svc:4566",
            },
        }
    )
    assert (
        "the endpoint http://localstack.blink.svc:4566 is not https" in (response["error_message"])
    )


def test_the_step_log_says_how_the_key_was_probed_and_where_it_went(
    started: list[PluginProcess], iam: LocalIAM
) -> None:
    process = serve(started)
    name = f"/ci/{uuid.uuid4().hex[:8]}"
    response = process.stub().ExecuteAction(
        execute_request(
            {"user_name": iam.new_user(), "wait_until_usable": "true", "vault": f"ssm:{name}"},
            iam.connection(),
        ),
        timeout=60,
    )
    assert response.error_code == 0, response.error_message
    log = response.log_buffer.decode()
    assert re.search(r"STS accepted the new key after \d+\.\d\ds \(1 probe\(s\)\)", log), log
    assert f"the key is in ssm:{name}, version 1 (a new parameter)" in log


def test_a_replaced_key_is_said_to_be_an_earlier_attempts(
    iam: LocalIAM, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plugin")
    user = iam.new_user()
    request = {
        "parameters": {"user_name": user, "idempotency_key": f"run-{uuid.uuid4().hex}"},
        "connection": iam.connection(endpoint_url=proxy.url),
    }
    first = execute(request)
    second = execute(request)
    replaced = second["result"]["ReplacedAccessKeyId"]
    assert replaced == first["result"]["AccessKey"]["AccessKeyId"]
    assert f"deleted key {replaced}: an earlier attempt with this idempotency key made it" in (
        caplog.text
    )
    assert "never received" not in caplog.text


def test_the_command_line_lists_and_accepts_the_forms_choices_in_any_case(
    iam: LocalIAM, cli_env: dict[str, str]
) -> None:
    shown = run_cli("run", "--help", env=cli_env).stdout
    assert "--status {Active,Inactive}" in shown
    assert "--at-limit {fail,delete_oldest_inactive}" in shown
    user = iam.new_user()
    completed = run_cli("run", "--user-name", user, "--status", "inactive", env=cli_env)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["AccessKey"]["Status"] == "Inactive"
    refused = run_cli("run", "--user-name", user, "--status", "paused", env=cli_env)
    assert refused.returncode == 2
    assert "invalid choice: 'paused' (choose from 'Active', 'Inactive')" in refused.stderr


GRPC_HANG_UP_LINE = re.compile(
    r"^\S+ \S+ WARNING the caller went while the answer to "
    r"/integration_pack\.Plugin/ExecuteAction was being written$"
)


def all_withdrawn(process: PluginProcess, calls: int) -> Callable[[], bool]:
    """Whether the server has said, for each of `calls` keys, that its answer did not arrive
    (its custody line)."""
    return lambda: sum("did not reach the caller" in line for line in process.output) >= calls


def test_a_caller_that_hangs_up_mid_answer_costs_one_warning_line(iam: LocalIAM) -> None:
    """A caller that closes its connection while the answer waits on its flow control: when
    grpc's failed write reaches the server before its hang-up does (a race: about one call in
    three here), grpc logs an ExecuteBatchError traceback at ERROR; the server's log carries
    one warning line instead, with no byte of the answer, beside the custody line that
    deletes the key."""
    from tests.support.hang_up import hang_up_mid_answer

    process = PluginProcess()
    echoed = "echoed-context-" + uuid.uuid4().hex
    users = []
    try:
        for _ in range(40):  # until grpc's own line has come at least once
            user = iam.new_user()
            users.append(user)
            request = execute_request(
                {"user_name": user}, iam.connection(), context=echoed.encode() * 4000
            )
            hang_up_mid_answer(process.port, request.SerializeToString(), wait=1.0)
            until(all_withdrawn(process, len(users)), 30)
            if re.search("being written|ExecuteBatchError", process.text()):
                break
        process.terminate()
    finally:
        process.stop()
    lines, text = process.output[1:], process.text()
    assert "Traceback" not in text
    assert "ExecuteBatchError" not in text
    assert " ERROR " not in text
    said = [line.rstrip("\n") for line in lines if "being written" in line]
    assert said, "grpc's write never failed before the hang-up was seen, in 40 calls"
    for line in said:
        assert GRPC_HANG_UP_LINE.match(line), line
    assert echoed not in text  # no byte of the answer
    deleted = [line for line in lines if "did not reach the caller" in line]
    assert len(deleted) == len(users)
    assert all(iam.key_ids(user) == [] for user in users)


def test_serve_raises_its_open_files_to_the_hard_limit() -> None:
    """containerd starts containers with 1024 open files (soft) under a far higher hard limit;
    serve, holding a socket a call, raises its own soft limit to the hard one, as Go servers do."""
    process = PluginProcess(open_files=(256, 4096))
    try:
        limits = Path(f"/proc/{process.process.pid}/limits").read_text()
        soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits).groups()  # type: ignore[union-attr]
        assert (int(soft), int(hard)) == (4096, 4096)
    finally:
        process.stop()
