"""`serve` under a real gRPC client over loopback, with moto behind it: the Blink plugin protocol.

The server runs as a process of its own (`python -m plugin serve`), as a runner would start it.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plugin.contract import manifest, resources
from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import ADMIN_SECRET, LocalIAM


@pytest.fixture(scope="module")
def server() -> Iterator[PluginProcess]:
    process = PluginProcess()
    yield process
    process.stop()


@pytest.fixture
def stub(server: PluginProcess) -> Any:
    return server.stub()


def key_of(response: Any) -> dict[str, str]:
    assert response.error_code == 0, response.error_message
    return json.loads(response.result)["AccessKey"]  # type: ignore[no-any-return]


# ---- the RPCs --------------------------------------------------------------------------------


def test_it_says_it_is_ready_on_one_line(server: PluginProcess) -> None:
    assert server.mode == "plaintext, loopback only"
    assert server.ready_line.startswith("iam-create-access-key: serving integration_pack.Plugin")


def test_describe_and_get_actions_are_the_manifest(stub: Any) -> None:
    description = stub.Describe(pb.Empty(), timeout=10)
    (action,) = stub.GetActions(pb.Empty(), timeout=10).actions
    assert list(description.actions) == [action]
    document = resources.manifest()
    assert (description.name, description.version) == (document["name"], document["version"])
    assert (action.name, action.display_name, action.active) == (
        "iam_create_access_key",
        "IAM Create Access Key",
        True,
    )
    assert action.description == document["description"]
    fields = [parameter.field for parameter in action.parameters]
    for field, parameter in zip(fields, manifest.parameters(), strict=True):
        assert field.name == parameter["name"]
        assert field.type == parameter["type"]
        assert field.description == parameter["description"]
        assert field.index == parameter["order"]
        assert field.required == parameter["required"]
        assert field.pattern == parameter.get("pattern", "")
        assert list(field.options) == [str(choice) for choice in parameter.get("enum", [])]
        default = parameter.get("default")
        assert field.default == ("" if default is None else json.dumps(default).strip('"'))
        assert field.display_name == parameter["display_name"]  # what the runner's form shows
        examples = parameter.get("examples", [])
        assert field.placeholder == (str(examples[0]) if examples else "")
    assert {f.display_name for f in fields} >= {"AWS Region(s)", "User Name"}
    assert next(f for f in fields if f.name == "user_name").placeholder == "Bob"
    kinds = {field.name: field.input_type for field in fields}
    assert kinds["disable_xml_to_json"] == "checkbox"
    assert kinds["status"] == "dropdown"
    assert kinds["wait_for_user"] == "number"
    assert {f.name for f in action.output.fields} >= {
        "AccessKey.AccessKeyId",
        "AccessKey.SecretAccessKey",
        "AccessKey.UserName",
    }
    connection = description.connections["aws"]
    in_order = sorted(connection.fields.values(), key=lambda field: field.field.index)
    assert [f.field.name for f in in_order] == list(resources.schema("connection")["properties"])
    assert connection.fields["secret_access_key"].field.input_type == "password"
    assert connection.fields["access_key_id"].field.display_name == "Access Key ID"
    assert connection.fields["endpoint_url"].field.format == "uri"
    assert all(field.field.display_name for field in connection.fields.values())


def test_the_chain_create_user_then_execute_action(
    stub: Any, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = stub.ExecuteAction(
        execute_request(
            {"regions": "us-east-1", "user_name": user},
            iam.connection(endpoint_url=proxy.url),
            context=b'{"run": "r-1"}',
        ),
        timeout=30,
    )

    key = key_of(response)
    assert key["UserName"] == user
    assert proxy.issued_secrets(mark) == [key["SecretAccessKey"]]
    assert iam.key_ids(user) == [key["AccessKeyId"]]
    assert response.context == b'{"run": "r-1"}'
    log = response.log_buffer.decode()
    assert "partition aws, signing region us-east-1" in log
    assert f'user "{user}"' in log
    assert f"created access key {key['AccessKeyId']}" in log
    assert re.search(r"finished in \d+ ms: error code 0", log)
    assert key["SecretAccessKey"] not in log
    assert ADMIN_SECRET not in log


def test_the_step_log_tells_of_waits_and_retries(
    stub: Any, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.refuse("NoSuchEntity", 404), faults.THROTTLE)

    response = stub.ExecuteAction(
        execute_request({"user_name": user}, iam.connection(endpoint_url=proxy.url)), timeout=30
    )

    key_of(response)
    log = response.log_buffer.decode()
    assert "IAM does not show the user yet (NoSuchEntity); trying again in" in log
    assert "CreateAccessKey attempt 1 failed (IAM answered 400 Throttling); trying again" in log


def test_display_names_and_parameters_as_json(stub: Any, iam: LocalIAM, proxy: FaultProxy) -> None:
    by_display = stub.ExecuteAction(
        execute_request(
            {
                "AWS Region(s)": "us-east-1",
                "User Name": iam.new_user(),
                "Status At Creation": "Inactive",
            },
            iam.connection(endpoint_url=proxy.url),
        ),
        timeout=30,
    )
    as_json = stub.ExecuteAction(
        execute_request(
            {"parameters_as_json": json.dumps({"user_name": iam.new_user(), "check_only": True})},
            iam.connection(endpoint_url=proxy.url),
        ),
        timeout=30,
    )
    assert key_of(by_display)["Status"] == "Inactive"
    assert as_json.error_code == 0, as_json.error_message
    assert json.loads(as_json.result)["Check"]["WouldCreate"] is True


def test_the_new_options_arrive_as_strings(stub: Any, iam: LocalIAM, proxy: FaultProxy) -> None:
    """Idempotency Key, Wait For A New User and SES SMTP: strings from the form, as a runner
    sends them; the same token twice leaves one key."""
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.refuse("NoSuchEntity", 404))
    parameters = {
        "User Name": user,
        "Idempotency Key": "run-7/step-2",
        "Wait For A New User (seconds)": "5",
        "SES SMTP Password For Region": "eu-west-1",
    }
    connection = iam.connection(endpoint_url=proxy.url)

    first = stub.ExecuteAction(execute_request(parameters, connection), timeout=30)
    second = stub.ExecuteAction(execute_request(parameters, connection), timeout=30)

    assert "SesSmtpPasswordV4" in key_of(first)
    replaced = json.loads(second.result)["ReplacedAccessKeyId"]
    assert replaced == key_of(first)["AccessKeyId"]
    assert iam.key_ids(user) == [key_of(second)["AccessKeyId"]]
    assert key_of(second)["SesSmtpPasswordV4"] not in second.log_buffer.decode()


def test_the_raw_xml_mode_byte_for_byte(stub: Any, iam: LocalIAM, proxy: FaultProxy) -> None:
    mark = proxy.mark()
    response = stub.ExecuteAction(
        execute_request(
            {"user_name": iam.new_user(), "Disable XML To JSON Auto Convert": "true"},
            iam.connection(endpoint_url=proxy.url),
        ),
        timeout=30,
    )
    assert response.error_code == 0, response.error_message
    (exchange,) = [e for e in proxy.since(mark) if e.action == "CreateAccessKey"]
    assert response.result == exchange.upstream_body


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            {"name": "aws_delete_user", "parameters": {"user_name": "bob"}},
            "Invalid input: this plugin serves the action iam_create_access_key, not aws_delete_user",
        ),
        ({"parameters": {"user_nme": "bob"}}, "parameters.user_nme: unknown field"),
        (
            {"parameters": {"user_name": "bob", "User Name": "bob"}},
            "parameters.user_name is given twice",
        ),
        ({"parameters": {"user_name": "bób"}}, "parameters.user_name: must match the pattern"),
        ({"parameters": {"parameters_as_json": "[1]"}}, "parameters_as_json must be a JSON object"),
        ({"parameters": {"user_name": "bob"}, "other": True}, "of type aws, not gcp"),
    ],
    ids=["unknown-action", "typo", "twice", "bad-name", "json-list", "wrong-connection"],
)
def test_invalid_input_is_code_2_and_sends_nothing(
    stub: Any, iam: LocalIAM, proxy: FaultProxy, request_: dict[str, Any], expected: str
) -> None:
    connection = iam.connection(endpoint_url=proxy.url)
    message = execute_request(
        request_["parameters"],
        None if request_.get("other") else connection,
        **({"name": request_["name"]} if "name" in request_ else {}),
    )
    if request_.get("other"):
        message.connections["gcp"].data.update(connection)
    mark = proxy.mark()

    response = stub.ExecuteAction(message, timeout=30)

    assert response.error_code == 2
    assert expected in response.error_message
    assert response.result == b""
    assert proxy.since(mark) == []


def test_test_credentials_answers_valid_or_not(stub: Any, iam: LocalIAM) -> None:
    good = stub.TestCredentials(
        pb.TestCredentialsRequest(
            connections={"aws": pb.ConnectionInstance(data=iam.connection())}
        ),
        timeout=30,
    )
    bad = stub.TestCredentials(
        pb.TestCredentialsRequest(
            connections={
                "aws": pb.ConnectionInstance(data=iam.connection(endpoint_url="http://example.com"))
            }
        ),
        timeout=30,
    )
    assert good.are_credentials_valid is True
    assert json.loads(good.raw_validation_response)["Arn"].startswith("arn:aws:")
    assert bad.are_credentials_valid is False
    refused = json.loads(bad.raw_validation_response)
    assert refused["error_code"] == 3  # not on the server's --allow-endpoint list
    assert (
        "http://example.com:80 is not an endpoint this server allows" in (refused["error_message"])
    )


def test_health_probe_says_when_it_was_last_used_in_nanoseconds(iam: LocalIAM) -> None:
    """As the SDK computes last_use: the start until the first call, now while a call is in
    flight, else when the last call began or ended; Unix nanoseconds."""
    before_start = time.time_ns()
    process = PluginProcess()
    try:
        stub = process.stub()
        started = stub.HealthProbe(pb.Empty(), timeout=10).last_use
        assert before_start <= started <= time.time_ns()
        time.sleep(0.3)
        assert stub.HealthProbe(pb.Empty(), timeout=10).last_use == started  # idle: unchanged

        waiting = stub.ExecuteAction.future(
            execute_request(
                {"user_name": f"ghost-{time.time_ns()}", "wait_for_user": "3"},
                iam.connection(),
            ),
            timeout=30,
        )
        time.sleep(0.5)
        during = [stub.HealthProbe(pb.Empty(), timeout=10).last_use for _ in range(2)]
        assert started < during[0] < during[1] <= time.time_ns()  # now, while in flight
        waiting.result()
        ended = time.time_ns()
        after = stub.HealthProbe(pb.Empty(), timeout=10).last_use
        assert during[1] < after <= ended  # the call's end
        time.sleep(0.3)
        assert stub.HealthProbe(pb.Empty(), timeout=10).last_use == after

        health = health_pb2_grpc.HealthStub(process.channel())
        for service in ("", "integration_pack.Plugin"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        process.stop()


def test_32_concurrent_calls_for_32_users(stub: Any, iam: LocalIAM) -> None:
    users = [iam.new_user() for _ in range(32)]

    def create(user: str) -> Any:
        return stub.ExecuteAction(
            execute_request({"user_name": user}, iam.connection()), timeout=60
        )

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(create, users))

    for user, response in zip(users, responses, strict=True):
        key = key_of(response)
        assert key["UserName"] == user
        assert iam.key_ids(user) == [key["AccessKeyId"]]


# ---- time, cancellation and stopping --------------------------------------------------------


def wait_for_keys(iam: LocalIAM, user: str, count: int, seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        keys = iam.key_ids(user)
        if len(keys) == count or time.monotonic() > deadline:
            return keys
        time.sleep(0.1)


def wait_for_create(proxy: FaultProxy, mark: int, seconds: float = 15) -> None:
    """Until IAM (behind the proxy) has made the key, whatever happens to its answer."""
    deadline = time.monotonic() + seconds
    while not any(e.upstream_body for e in proxy.since(mark) if e.action == "CreateAccessKey"):
        assert time.monotonic() < deadline, "the create never reached IAM"
        time.sleep(0.02)


@pytest.mark.parametrize("bound", ["timeout", "deadline"])
def test_a_held_answer_ends_within_the_time_allowed(
    stub: Any, iam: LocalIAM, proxy: FaultProxy, bound: str
) -> None:
    user = iam.new_user()
    # every attempt is held (a retry after a read timeout that met no fault would succeed)
    proxy.inject("CreateAccessKey", *[faults.hold_after_forward(8)] * 6)
    started = time.monotonic()

    if bound == "timeout":
        response = stub.ExecuteAction(
            execute_request({"user_name": user}, iam.connection(endpoint_url=proxy.url), timeout=3),
            timeout=60,
        )
    else:  # only the call's own deadline, as a runner always sets one
        response = stub.ExecuteAction(
            execute_request({"user_name": user}, iam.connection(endpoint_url=proxy.url)), timeout=4
        )

    assert time.monotonic() - started < 5.5  # 3-4 s and a busy machine's margin, not the 8 s hold
    assert response.error_code == 4
    assert "in the time allowed" in response.error_message
    assert wait_for_keys(iam, user, 0) == []  # the held key is found and deleted, late or not


def test_a_call_cancelled_while_iam_creates_the_key_leaves_no_key(
    server: PluginProcess, stub: Any, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.hold_after_forward(2))
    mark = proxy.mark()

    call = stub.ExecuteAction.future(
        execute_request({"user_name": user}, iam.connection(endpoint_url=proxy.url)), timeout=60
    )
    wait_for_create(proxy, mark)
    assert len(iam.key_ids(user)) == 1
    call.cancel()

    assert wait_for_keys(iam, user, 0) == []
    # The server says so once the delete is done: IAM may show it before the line is read.
    deadline = time.monotonic() + 10
    while not (deleted := [line for line in server.output if "the caller hung up" in line]):
        assert time.monotonic() < deadline, server.text()
        time.sleep(0.05)
    assert "deleted key AKIA" in deleted[-1]
    assert not any(secret in server.text() for secret in proxy.issued_secrets(mark))


def test_sigterm_finishes_the_create_in_flight(iam: LocalIAM, proxy: FaultProxy) -> None:
    process = PluginProcess("--grace", "30")
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.hold_after_forward(2))
    mark = proxy.mark()
    try:
        call = process.stub().ExecuteAction.future(
            execute_request({"user_name": user}, iam.connection(endpoint_url=proxy.url)),
            timeout=60,
        )
        wait_for_create(proxy, mark)

        code = process.terminate()

        key = key_of(call.result())
        assert code == 0
        assert iam.key_ids(user) == [key["AccessKeyId"]]
        assert proxy.issued_secrets(mark) == [key["SecretAccessKey"]]
        assert "stopping; finishing the calls in flight" in process.text()
        assert key["SecretAccessKey"] not in process.text()
    finally:
        process.stop()


# ---- hostile messages ------------------------------------------------------------------------


def _many_parameters(iam: LocalIAM) -> Any:
    return execute_request({f"p{i}": "x" for i in range(5000)}, iam.connection())


def _megabyte_values(iam: LocalIAM) -> Any:
    return execute_request({"user_name": "u" * 2_000_000, "regions": "r" * 2_000_000}, None)


def _deep_json(iam: LocalIAM) -> Any:
    return execute_request({"parameters_as_json": "[" * 30_000 + "]" * 30_000}, None)


def _deep_json_object(iam: LocalIAM) -> Any:
    return execute_request({"parameters_as_json": '{"a":' * 10_000 + "1" + "}" * 10_000}, None)


def _json_of_300k_keys(iam: LocalIAM) -> Any:
    """4 MiB of JSON: parsed, it would cost hundreds of MB; it is sized first."""
    document = json.dumps({f"k{i}": "v" for i in range(300_000)})
    return execute_request({"parameters_as_json": document}, iam.connection())


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (_many_parameters, "parameters: 5000 entries; this action takes at most 64"),
        (_megabyte_values, "parameters: 4000016 characters in all (names and values"),
        (_deep_json, "parameters_as_json is not a JSON object (it is nested more than 32 deep)"),
        (_deep_json_object, "parameters_as_json is not a JSON object"),
        (
            _json_of_300k_keys,
            "characters in all (names and values, parameters_as_json included); at most 65536",
        ),
    ],
    ids=[
        "5000-parameters",
        "megabyte-values",
        "json-30000-deep",
        "object-10000-deep",
        "json-4-mib",
    ],
)
def test_hostile_messages_are_code_2_and_the_next_call_is_served(
    stub: Any, iam: LocalIAM, build: Any, expected: str
) -> None:
    mark = iam.mark()
    response = stub.ExecuteAction(build(iam), timeout=60)
    assert response.error_code == 2
    assert expected in response.error_message
    assert len(response.error_message) < 2000
    assert iam.since(mark) == []
    assert stub.HealthProbe(pb.Empty(), timeout=10) is not None


def test_a_message_over_5_mib_is_refused_by_grpc(stub: Any) -> None:
    message = execute_request({"user_name": "u" * (6 * 1024 * 1024)}, None)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ExecuteAction(message, timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.HealthProbe(pb.Empty(), timeout=10) is not None


def test_invalid_utf8_is_a_grpc_status_and_the_next_call_is_served(server: PluginProcess) -> None:
    """A string field that is not UTF-8 cannot be read as the message at all."""
    name = b"iam_create_access_key"
    entry = b"\x0a\x09user_name\x12\x01\xff"  # key "user_name", value one byte: 0xff
    raw = b"\x0a" + bytes([len(name)]) + name + b"\x12" + bytes([len(entry)]) + entry
    call = server.channel().unary_unary(
        "/integration_pack.Plugin/ExecuteAction",
        request_serializer=lambda data: data,
        response_deserializer=pb.ExecuteActionResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(raw, timeout=10)
    assert raised.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    assert server.stub().HealthProbe(pb.Empty(), timeout=10) is not None


def test_execute_on_the_command_line_calls_deep_json_invalid_input(cli_env: dict[str, str]) -> None:
    completed = run_cli("execute", env=cli_env, stdin=b"[" * 5000 + b"]" * 5000)
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["error_code"] == 2
    assert completed.stderr.count("\n") == 1


# ---- where it listens ------------------------------------------------------------------------


def test_a_non_loopback_host_without_tls_is_refused(cli_env: dict[str, str]) -> None:
    completed = run_cli("serve", "--host", "0.0.0.0", "--port", "0", env=cli_env)  # noqa: S104
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "needs TLS (--tls-cert and --tls-key)" in completed.stderr


# ---- TLS -------------------------------------------------------------------------------------


def test_tls_serves_a_client_that_trusts_the_certificate(pki: dict[str, Any]) -> None:
    _, _, key_file, cert_file = pki["server"]
    process = PluginProcess("--tls-cert", cert_file, "--tls-key", key_file)
    try:
        assert process.mode == "TLS"
        trusting = grpc.ssl_channel_credentials(root_certificates=pki["ca"][1])
        stub = process.stub(trusting)
        assert stub.HealthProbe(pb.Empty(), timeout=10).last_use > 0
        with pytest.raises(grpc.RpcError):
            process.stub().HealthProbe(pb.Empty(), timeout=5)  # in clear: refused
    finally:
        process.stop()


def test_mutual_tls_refuses_a_client_without_a_certificate(pki: dict[str, Any]) -> None:
    _, _, key_file, cert_file = pki["server"]
    process = PluginProcess(
        "--tls-cert",
        cert_file,
        "--tls-key",
        key_file,
        "--tls-client-ca",
        pki["ca"][3],
        "--tls-client-name",
        "runner.blink.svc",
    )
    try:
        assert process.mode == "mutual TLS"
        client_key, client_cert = pki["client"][0], pki["client"][1]
        with_certificate = grpc.ssl_channel_credentials(
            root_certificates=pki["ca"][1], private_key=client_key, certificate_chain=client_cert
        )
        assert process.stub(with_certificate).HealthProbe(pb.Empty(), timeout=10).last_use > 0
        without = grpc.ssl_channel_credentials(root_certificates=pki["ca"][1])
        with pytest.raises(grpc.RpcError) as raised:
            process.stub(without).HealthProbe(pb.Empty(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        process.stop()


def test_no_secret_in_the_servers_output_even_under_debug(iam: LocalIAM, proxy: FaultProxy) -> None:
    process = PluginProcess("--debug")
    user = iam.new_user()
    mark = proxy.mark()
    try:
        response = process.stub().ExecuteAction(
            execute_request(
                {"user_name": user, "ses_smtp_region": "us-east-1"},
                iam.connection(endpoint_url=proxy.url),
            ),
            timeout=30,
        )
        key = key_of(response)
        assert process.terminate() == 0
    finally:
        process.stop()
    output = process.text()
    assert "CreateAccessKey" in output  # botocore's wire log is there, redacted
    assert proxy.issued_secrets(mark) == [key["SecretAccessKey"]]
    for secret in (key["SecretAccessKey"], key["SesSmtpPasswordV4"], ADMIN_SECRET):
        assert secret not in output
        assert secret not in response.log_buffer.decode()


# ---- the step's own log ----------------------------------------------------------------------


def test_the_step_log_is_redacted_and_bounded() -> None:
    """log_buffer: this step's plugin records only, secrets masked, at most 64 KiB."""
    import logging
    import threading

    from plugin.hosts.serve.server import MAX_LOG_BYTES, step_log
    from plugin.runtime import redaction
    from plugin.runtime.deadline import Deadline, call_within

    plugin_log = logging.getLogger("plugin.test")
    plugin_log.setLevel(logging.INFO)
    guarded = "guarded-value-never-shown"
    with redaction.redactor().guarding(guarded), step_log() as step:
        plugin_log.info('answer {"SecretAccessKey": "named-secret-never-shown"}')
        plugin_log.info("a message quoting %s", guarded)
        other = threading.Thread(target=lambda: plugin_log.info("from another step's thread"))
        other.start()
        other.join()
        call_within(lambda: plugin_log.info("from this step's deadline worker"), Deadline(30))
        for index in range(20_000):
            plugin_log.info("line %d of a long step", index)
    text = step.text().decode()
    assert "named-secret-never-shown" not in text
    assert guarded not in text
    assert '"SecretAccessKey": "***"' in text
    assert "another step's thread" not in text
    assert "this step's deadline worker" in text
    assert len(step.text()) <= MAX_LOG_BYTES
    assert "line 0 of a long step" in text


def test_a_port_in_use_is_refused_not_shared(
    server: PluginProcess, cli_env: dict[str, str]
) -> None:
    """grpc would share the port with the running server (SO_REUSEPORT) and take half its calls."""
    completed = run_cli("serve", "--port", str(server.port), env=cli_env, timeout=30)
    assert completed.returncode == 2  # a start-up error names its cause (issue 21), exit 2
    assert completed.stderr.splitlines() == [
        f"iam-create-access-key: error: cannot listen on 127.0.0.1:{server.port}: the port is "
        "in use (another process listens on it)"
    ]


@pytest.mark.parametrize(
    ("timeout", "remaining", "expected"),
    [
        (0, None, 300.0),  # neither: the server's cap (--max-call-seconds)
        (30, None, 30.0),
        (0, 10.3, 9.0),  # the deadline less half a second to answer, in whole seconds
        (5, 29.9, 5.0),  # the earlier of the two
        (0, 0.4, 0.1),  # no time at all: the action says so instead of trying
        (7200, None, 300.0),  # a runner's longer timeout: the server's cap
        (0, 1e9, 300.0),  # a call without a deadline reports a huge one
    ],
)
def test_the_time_for_a_call(timeout: int, remaining: float | None, expected: float) -> None:
    from plugin.hosts.serve.server import _time_for_the_call

    class Context:
        def time_remaining(self) -> float | None:
            return remaining

    assert _time_for_the_call(timeout, Context(), 300.0) == expected
