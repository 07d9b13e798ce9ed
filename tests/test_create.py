"""What the create call tries again at once (only what IAM cannot have acted on) and what not."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from plugin.aws import client_errors
from plugin.contract.errors import ActionError, Category
from plugin.invocation import create
from plugin.runtime.deadline import Deadline

HEAD = 'CreateAccessKey failed for user "bob"'


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    return boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="stub-secret-not-used-for-anything",
    )


def test_throttling_is_tried_again_with_backoff_then_reported(client) -> None:  # type: ignore[no-untyped-def]
    pauses: list[float] = []
    with Stubber(client) as stubber:
        for _ in range(create.MAX_ATTEMPTS):
            stubber.add_client_error("create_access_key", "Throttling", http_status_code=400)
        with (
            pytest.raises(ActionError) as raised,
            client_errors.about(client_errors.context("bob")),
        ):
            create.create_access_key(client, "bob", Deadline(30), sleep=pauses.append)
        stubber.assert_no_pending_responses()  # every attempt was made, and no listing
    assert len(pauses) == create.MAX_ATTEMPTS - 1
    assert raised.value.category is Category.TRANSIENT
    assert raised.value.message == f"{HEAD}: Throttling"


@pytest.mark.parametrize(
    ("code", "status"),
    [("LimitExceeded", 409), ("NoSuchEntity", 404), ("AccessDenied", 403)],
    ids=["limit", "no-such-user", "denied"],
)
def test_a_refusal_is_never_tried_again(client, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    pauses: list[float] = []
    calls: list[str] = []
    client.meta.events.register(  # botocore's public event: one per call the client makes
        "before-parameter-build.iam.CreateAccessKey", lambda **_: calls.append("create")
    )
    with Stubber(client) as stubber:
        stubber.add_client_error("create_access_key", code, http_status_code=status)
        stubber.add_client_error("create_access_key", code, http_status_code=status)
        with pytest.raises(ClientError):
            create.create_access_key(client, "bob", Deadline(30), sleep=pauses.append)
    assert calls == ["create"]  # the second answer was never asked for
    assert pauses == []


def test_a_connection_that_never_opened_is_tried_again() -> None:
    attempts: list[str] = []
    pauses: list[float] = []

    class Unreachable:
        meta = boto3.client("iam", region_name="us-east-1").meta

        def create_access_key(self, **arguments: str) -> dict[str, object]:
            attempts.append(arguments["UserName"])
            raise EndpointConnectionError(endpoint_url="https://iam.invalid")

    with pytest.raises(ActionError) as raised, client_errors.about(client_errors.context("bob")):
        create.create_access_key(Unreachable(), "bob", Deadline(30), sleep=pauses.append)  # type: ignore[arg-type]
    assert attempts == ["bob"] * create.MAX_ATTEMPTS
    assert len(pauses) == create.MAX_ATTEMPTS - 1
    # A stand-in client, not one of a session the action signs with: the service goes unnamed.
    assert raised.value.message == (
        f"{HEAD}: could not connect to the endpoint https://iam.invalid (nothing was sent)"
    )
