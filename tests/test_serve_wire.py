"""Map entries counted on the wire before parsing (issue 20, the red team's parse flood): a
556,632-byte TestCredentials of 33,000 tiny connections parsed to some 17 times its size, and
16 callers sending it took `serve` from 55 MiB to 305 MB, past the pod's 256 MiB. The scanner is
tried on real messages; the attack is tried as written, against a running server."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import grpc
import pytest

from plugin.contract.errors import ActionError
from plugin.hosts.serve import translation, wire
from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
from tests.support.grpc_plugin import PluginProcess
from tests.support.grpc_plugin import execute_request as request_for
from tests.support.stalled_streams import PeakResident

POD_LIMIT_KIB = 256 * 1024  # deploy/kubernetes/deployment.yaml: limits.memory
RAW_CAP = 557_056  # serve's MAX_CREDENTIALS_MESSAGE_BYTES: 8 connections of 64 KiB, and framing
CALLERS = 16


def crowded(message: Any, size: int = 556_500) -> bytes:
    """The red team's flood (parse_flood.py): tiny connection entries until `size` bytes."""
    number = 0
    while message.ByteSize() < size:
        for _ in range(20):
            message.connections[f"{number:x}"].data["a"] = ""
            number += 1
    return bytes(message.SerializeToString())


def refusal_after_parsing(message: Any) -> str:
    """What translation says of the same message once parsed (the words the scan must give)."""
    try:
        if isinstance(message, pb.TestCredentialsRequest):
            translation.credentials_request(message, None)
        else:
            translation.engine_request(message, None, len(message.context), 4 * 1024 * 1024)
    except ActionError as error:
        return str(error)
    raise AssertionError("translation accepted it")


def test_a_runner_request_is_read_whole_and_refused_nothing() -> None:
    request = request_for(
        {"user_name": "bob", "regions": "us-east-1"},
        {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "x" * 40},
        context=b"the runner's context",
        timeout=30,
    )
    raw = request.SerializeToString()
    scan = wire.execute_request(raw)
    assert scan.refusal is None
    assert scan.timeout == 30
    assert raw[slice(*scan.context)] == b"the runner's context"
    test = pb.TestCredentialsRequest(connections=request.connections)
    assert wire.credentials_request(test.SerializeToString()).refusal is None


def test_a_negative_timeout_reads_as_protobuf_reads_it() -> None:
    raw = pb.ExecuteActionRequest(name="x", timeout=-5).SerializeToString()
    assert wire.execute_request(raw).timeout == -5


def many_parameters() -> Any:
    return pb.ExecuteActionRequest(parameters={str(n): "" for n in range(65)})


def many_connections() -> Any:
    return pb.ExecuteActionRequest(
        connections={str(n): pb.ConnectionInstance(data={"k": "v"}) for n in range(9)}
    )


def many_fields() -> Any:
    data = {str(n): "" for n in range(65)}
    return pb.ExecuteActionRequest(connections={"aws": pb.ConnectionInstance(data=data)})


def both_over() -> Any:
    message = many_connections()
    message.parameters.update({str(n): "" for n in range(100)})
    return message


@pytest.mark.parametrize(
    ("build", "said"),
    [
        (many_parameters, "Invalid input: parameters: 65 entries; this action takes at most 64"),
        (many_connections, "Invalid input: connections: 9 entries; at most 8"),
        (many_fields, "Invalid input: connections: 65 fields in one connection; at most 64"),
        (both_over, "Invalid input: parameters: 100 entries; this action takes at most 64"),
    ],
    ids=["parameters", "connections", "fields-of-one-connection", "parameters-first"],
)
def test_an_execute_request_over_a_cap_is_refused_in_translations_words(
    build: Any, said: str
) -> None:
    message = build()
    message.name, message.context = "iam_create_access_key", b"echo me"
    scan = wire.execute_request(message.SerializeToString())
    assert scan.refusal is not None
    assert str(scan.refusal) == said == refusal_after_parsing(message)
    assert message.SerializeToString()[slice(*scan.context)] == b"echo me"


def test_a_credentials_request_over_a_cap_is_refused_in_translations_words() -> None:
    message = pb.TestCredentialsRequest()
    raw = crowded(message)
    scan = wire.credentials_request(raw)
    assert scan.refusal is not None
    assert str(scan.refusal) == refusal_after_parsing(message)
    assert str(scan.refusal) == (
        f"Invalid input: connections: {len(message.connections)} entries; at most 8"
    )
    one = pb.TestCredentialsRequest(
        connections={"aws": pb.ConnectionInstance(data={str(n): "" for n in range(70)})}
    )
    refusal = wire.credentials_request(one.SerializeToString()).refusal
    assert refusal is not None
    assert str(refusal) == "Invalid input: connections: 70 fields in one connection; at most 64"


@pytest.mark.parametrize(
    "raw",
    [
        pb.ExecuteActionRequest(name="cut short").SerializeToString()[:-2],
        b"\x0b\x0c",  # a group: in no message of this protocol
        b"\x12\x05ab",  # a field longer than the message
        b"\xff" * 11,  # a varint that never ends
        b"\x00\x00",  # field number 0
        b"\x08\x01" * 65,  # 65 fields of a name never given
    ],
    ids=["truncated", "group", "overlong", "endless-varint", "field-zero", "other-fields"],
)
def test_bytes_the_scanner_cannot_read_are_unreadable(raw: bytes) -> None:
    with pytest.raises(wire.Unreadable):
        wire.execute_request(raw)
    with pytest.raises(wire.Unreadable):
        wire.credentials_request(raw)


@pytest.mark.parametrize("method", ["TestCredentials", "ExecuteAction"])
def test_the_parse_flood_is_refused_unparsed_and_memory_stays_bounded(
    started: list[PluginProcess], method: str
) -> None:
    """The attack as written: 16 callers, each sending requests just under the raw cap made of
    thousands of tiny connection entries, over and over. Each is refused with translation's
    words (code 2, nothing sent to AWS), and the server's memory stays far below the pod's
    limit (305 MB before the scan, for TestCredentials)."""
    process = PluginProcess("--max-calls", "32")
    started.append(process)
    if method == "TestCredentials":
        message: Any = pb.TestCredentialsRequest()
    else:
        message = pb.ExecuteActionRequest(name="iam_create_access_key")
    raw = crowded(message)
    assert len(raw) < RAW_CAP
    said = f"Invalid input: connections: {len(message.connections)} entries; at most 8"
    answers: list[Any] = []
    errors: list[BaseException] = []
    stop = time.monotonic() + 8

    def flood() -> None:
        with process.channel() as channel:
            call = channel.unary_unary(f"/integration_pack.Plugin/{method}")
            while time.monotonic() < stop:
                try:
                    answers.append(call(raw, timeout=60))
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # slots, bytes
                        errors.append(error)

    with PeakResident(process) as peak:
        callers = [threading.Thread(target=flood) for _ in range(CALLERS)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(120)

    assert not errors, errors[:3]
    assert answers, "no request was answered"
    for answer in answers:
        if method == "TestCredentials":
            response = pb.TestCredentialsResponse.FromString(answer)
            assert not response.are_credentials_valid
            refused = json.loads(response.raw_validation_response)
        else:
            response = pb.ExecuteActionResponse.FromString(answer)
            refused = {"error_code": response.error_code, "error_message": response.error_message}
        assert refused == {"error_code": 2, "error_message": said}
    # The pod's limit, halved: what the floods took before the scan was above all of it.
    assert peak.kib < POD_LIMIT_KIB // 2, f"peak resident memory {peak.kib // 1024} MiB"
