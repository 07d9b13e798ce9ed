"""Every way an automation platform signs in to AWS, over HTTP against moto's IAM and STS."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from plugin import engine, execute
from plugin.aws import sessions
from tests.support import fault_proxy as faults
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM

ROLE_ARN = "arn:aws:iam::123456789012:role/automation"
EXTERNAL_ID = "platform-tenant-4711"
TOKEN = "connection-session-token-" + "Tq9" * 30


@pytest.fixture(autouse=True)
def fresh_role_cache() -> Iterator[None]:
    sessions.forget()
    yield
    sessions.forget()


def signed_by(exchange: faults.Exchange) -> str:
    found = re.search(r"Credential=(\w+)/", exchange.authorization)
    assert found, exchange.authorization
    return found.group(1)


def sent(exchange: faults.Exchange) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(exchange.request_body.decode()).items()}


def create(connection: dict[str, object], user: str, **request: object) -> dict:  # type: ignore[type-arg]
    return execute({"parameters": {"user_name": user}, "connection": connection, **request})


def test_access_key_with_session_token(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    response = create(iam.connection(endpoint_url=proxy.url, session_token=TOKEN), user)
    assert response["error_code"] == 0, response["error_message"]
    (exchange,) = proxy.since(mark)
    assert signed_by(exchange) == ADMIN_KEY_ID
    assert iam.key_ids(user) == [response["result"]["AccessKey"]["AccessKeyId"]]


def test_role_with_external_id_from_the_runners_identity(
    iam: LocalIAM, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET)
    user = iam.new_user()
    mark = proxy.mark()

    connection = {
        "role_arn": ROLE_ARN,
        "external_id": EXTERNAL_ID,
        "endpoint_url": proxy.url,
        "region": "us-east-1",
    }
    response = create(connection, user)

    assert response["error_code"] == 0, response["error_message"]
    assume, create_call = proxy.since(mark)
    assert (assume.action, create_call.action) == ("AssumeRole", "CreateAccessKey")
    assert sent(assume)["ExternalId"] == EXTERNAL_ID
    assert sent(assume)["RoleArn"] == ROLE_ARN
    assert sent(assume)["RoleSessionName"] == "iam-create-access-key"
    assert signed_by(assume) == ADMIN_KEY_ID
    assert signed_by(create_call).startswith("ASIA")  # the key was created by the assumed role
    assert len(iam.key_ids(user)) == 1


def test_role_assumed_with_an_access_key(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    connection = iam.connection(
        endpoint_url=proxy.url,
        role_arn=ROLE_ARN,
        external_id=EXTERNAL_ID,
        role_session_name="blink-run-7",
        duration_seconds=900,
    )

    response = create(connection, user)

    assert response["error_code"] == 0, response["error_message"]
    assume, create_call = proxy.since(mark)
    assert sent(assume)["ExternalId"] == EXTERNAL_ID
    assert sent(assume)["RoleSessionName"] == "blink-run-7"
    assert sent(assume)["DurationSeconds"] == "900"
    assert signed_by(assume) == ADMIN_KEY_ID
    assert signed_by(create_call).startswith("ASIA")


def test_assumed_role_credentials_are_reused_across_invocations(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    connection = iam.connection(endpoint_url=proxy.url, role_arn=ROLE_ARN)
    mark = proxy.mark()
    for _ in range(3):
        assert create(connection, iam.new_user())["error_code"] == 0
    actions = [e.action for e in proxy.since(mark)]
    assert actions.count("AssumeRole") == 1
    assert actions.count("CreateAccessKey") == 3


def test_runners_identity_from_a_profile(
    iam: LocalIAM, cli_env: dict[str, str], tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[automation]\naws_access_key_id = {ADMIN_KEY_ID}\naws_secret_access_key = {ADMIN_SECRET}\n"
    )
    env = {
        k: v for k, v in cli_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials)
    user = iam.new_user()

    completed = run_cli("run", "--profile", "automation", "--user-name", user, env=env)

    assert completed.returncode == 0, completed.stderr
    assert iam.key_ids(user) == [json.loads(completed.stdout)["AccessKey"]["AccessKeyId"]]


def test_an_unknown_profile_is_a_configuration_error(cli_env: dict[str, str]) -> None:
    completed = run_cli("run", "--profile", "nope", "--user-name", "bob", env=cli_env)
    assert completed.returncode == 3
    assert "The config profile (nope) could not be found" in completed.stderr


def test_cli_flags_assume_a_role(iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str]) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    completed = run_cli(
        "run",
        "--user-name",
        user,
        "--role-arn",
        ROLE_ARN,
        "--external-id",
        EXTERNAL_ID,
        "--endpoint-url",
        proxy.url,
        env=cli_env,
    )
    assert completed.returncode == 0, completed.stderr
    assume = next(e for e in proxy.since(mark) if e.action == "AssumeRole")
    assert sent(assume)["ExternalId"] == EXTERNAL_ID


def test_test_connection_reports_the_identity_and_creates_nothing(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    mark = proxy.mark()
    response = engine.test_connection(
        {
            "connection": iam.connection(
                endpoint_url=proxy.url, role_arn=ROLE_ARN, external_id=EXTERNAL_ID
            )
        }
    )
    assert response["error_code"] == 0, response["error_message"]
    assert response["result"]["Account"] == "123456789012"
    assert ":assumed-role/automation/iam-create-access-key" in response["result"]["Arn"]
    assert [e.action for e in proxy.since(mark)] == ["AssumeRole", "GetCallerIdentity"]


def test_test_connection_from_the_cli(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    completed = run_cli("test-connection", "--endpoint-url", iam.url, env=cli_env)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["Account"] == "123456789012"


REFUSALS = {
    "invalid-key-id": (
        "CreateAccessKey",
        faults.refuse("InvalidClientTokenId"),
        "InvalidClientTokenId",
    ),
    "wrong-secret": (
        "CreateAccessKey",
        faults.refuse("SignatureDoesNotMatch"),
        "SignatureDoesNotMatch",
    ),
    "expired-token": ("CreateAccessKey", faults.refuse("ExpiredToken", 400), "ExpiredToken"),
    "assume-role-denied": (
        "AssumeRole",
        faults.refuse("AccessDenied"),
        "AssumeRole into arn:aws:iam::123456789012:role/automation was refused: AccessDenied",
    ),
}


@pytest.mark.parametrize(("action", "fault", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_sign_in_errors_are_one_line_rejections_without_secrets(
    iam: LocalIAM, proxy: FaultProxy, action: str, fault: faults.Fault, expected: str
) -> None:
    user = iam.new_user()
    proxy.inject(action, fault)
    connection = iam.connection(endpoint_url=proxy.url, session_token=TOKEN)
    if action == "AssumeRole":
        connection.update(role_arn=ROLE_ARN, external_id=EXTERNAL_ID)

    response = create(connection, user)

    assert response["error_code"] == 3
    message = response["error_message"]
    assert message.startswith(f'CreateAccessKey failed for user "{user}": ')
    assert expected in message
    assert "\n" not in message
    assert ADMIN_SECRET not in message
    assert TOKEN not in message
    assert iam.key_ids(user) == []


@pytest.mark.parametrize(
    "external_id", [None, "wrong-id"], ids=["missing-external-id", "wrong-external-id"]
)
def test_a_refused_external_id_says_what_to_check(
    iam: LocalIAM, proxy: FaultProxy, external_id: str | None
) -> None:
    proxy.inject("AssumeRole", faults.refuse("AccessDenied"))
    connection = iam.connection(endpoint_url=proxy.url, role_arn=ROLE_ARN)
    if external_id:
        connection["external_id"] = external_id
    response = create(connection, "bob")
    assert response["error_code"] == 3
    assert "external ID" in response["error_message"]


BAD_CONNECTIONS = {
    "secret-without-key-id": (
        {"secret_access_key": "s" * 40},
        "connection.secret_access_key: needs connection.access_key_id",
    ),
    "key-id-without-secret": (
        {"access_key_id": ADMIN_KEY_ID},
        "connection.access_key_id: needs connection.secret_access_key",
    ),
    "token-without-keys": (
        {"session_token": TOKEN},
        "connection.session_token: needs connection.access_key_id",
    ),
    "external-id-without-role": (
        {"external_id": EXTERNAL_ID},
        "connection.external_id: needs connection.role_arn",
    ),
    "session-name-without-role": (
        {"role_session_name": "x1"},
        "connection.role_session_name: needs connection.role_arn",
    ),
    "duration-too-short": (
        {"role_arn": ROLE_ARN, "duration_seconds": 60},
        "connection.duration_seconds: must be at least 900",
    ),
    "not-a-role-arn": (
        {"role_arn": "arn:aws:iam::123456789012:user/bob"},
        "connection.role_arn: must match",
    ),
    "partition-disagreement": (
        {"region": "cn-north-1"},
        "connection.region: cn-north-1 is in partition aws-cn",
    ),
}


@pytest.mark.parametrize(
    ("connection", "expected"), BAD_CONNECTIONS.values(), ids=BAD_CONNECTIONS.keys()
)
def test_bad_combinations_are_rejected_before_anything_is_sent(
    proxy: FaultProxy, connection: dict[str, object], expected: str
) -> None:
    mark = proxy.mark()
    response = execute(
        {
            "parameters": {"regions": "us-east-1", "user_name": "bob"},
            "connection": {"endpoint_url": proxy.url, **connection},
        }
    )
    assert response["error_code"] == 2
    assert expected in response["error_message"]
    assert TOKEN not in response["error_message"]
    assert proxy.since(mark) == []


def test_connection_secrets_never_reach_debug_output(
    iam: LocalIAM, proxy: FaultProxy, cli_env: dict[str, str]
) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    request = {
        "parameters": {"user_name": user},
        "connection": iam.connection(
            endpoint_url=proxy.url, session_token=TOKEN, role_arn=ROLE_ARN
        ),
    }

    completed = run_cli("execute", "--debug", env=cli_env, stdin=json.dumps(request).encode())

    assert completed.returncode == 0, completed.stderr[-2000:]
    assume = next(e for e in proxy.since(mark) if e.action == "AssumeRole")
    assumed = re.search(rb"<SecretAccessKey>([^<]+)</SecretAccessKey>", assume.upstream_body)
    assumed_token = re.search(rb"<SessionToken>([^<]+)</SessionToken>", assume.upstream_body)
    assert assumed
    assert assumed_token
    for secret in (
        ADMIN_SECRET,
        TOKEN,
        assumed.group(1).decode(),
        assumed_token.group(1).decode(),
        json.loads(completed.stdout)["result"]["AccessKey"]["SecretAccessKey"],
    ):
        assert secret not in completed.stderr
    assert "AssumeRole" in completed.stderr  # the debug log is there


def test_runners_identity_from_a_container_role(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    """The container credentials endpoint (ECS, EKS Pod Identity) as botocore reads it."""
    import http.server
    import threading

    served = []

    class Credentials(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            body = json.dumps(
                {
                    "AccessKeyId": ADMIN_KEY_ID,
                    "SecretAccessKey": ADMIN_SECRET,
                    "Token": TOKEN,
                    "Expiration": "2099-01-01T00:00:00Z",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Credentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        k: v for k, v in cli_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{server.server_port}/credentials"
    user = iam.new_user()
    try:
        completed = run_cli("run", "--user-name", user, "--debug", env=env)
    finally:
        server.shutdown()
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert served == ["/credentials"]
    assert len(iam.key_ids(user)) == 1
    assert TOKEN not in completed.stderr
    assert ADMIN_SECRET not in completed.stderr
