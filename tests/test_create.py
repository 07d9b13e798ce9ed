"""What the create call tries again (only what IAM cannot have acted on) and what it does not."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from plugin import create


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    return boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSTUB00000000",
        aws_secret_access_key="stub-secret-not-used-for-anything",
    )


def test_throttling_is_tried_again_with_backoff_then_reported(client) -> None:  # type: ignore[no-untyped-def]
    pauses: list[float] = []
    with Stubber(client) as stubber:
        for _ in range(create.MAX_ATTEMPTS):
            stubber.add_client_error("create_access_key", "Throttling", http_status_code=400)
        with pytest.raises(ClientError):
            create.create_access_key(client, "bob", sleep=pauses.append)
        stubber.assert_no_pending_responses()
    assert len(pauses) == create.MAX_ATTEMPTS - 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ServiceFailure", 500),
        ("ServiceUnavailable", 503),
        ("LimitExceeded", 409),
        ("NoSuchEntity", 404),
    ],
    ids=["5xx-ambiguous", "503-ambiguous", "limit", "no-such-user"],
)
def test_other_errors_are_never_tried_again(client, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    pauses: list[float] = []
    with Stubber(client) as stubber:
        stubber.add_client_error("create_access_key", code, http_status_code=status)
        stubber.add_client_error("create_access_key", code, http_status_code=status)
        with pytest.raises(ClientError):
            create.create_access_key(client, "bob", sleep=pauses.append)
        assert len(stubber._queue) == 1  # the second answer was never asked for
    assert pauses == []


def test_a_connection_that_never_opened_is_tried_again() -> None:
    attempts: list[str] = []
    pauses: list[float] = []

    class Unreachable:
        meta = boto3.client("iam", region_name="us-east-1").meta

        def create_access_key(self, **arguments: str) -> dict[str, object]:
            attempts.append(arguments["UserName"])
            raise EndpointConnectionError(endpoint_url="https://iam.invalid")

    with pytest.raises(EndpointConnectionError):
        create.create_access_key(Unreachable(), "bob", sleep=pauses.append)  # type: ignore[arg-type]
    assert attempts == ["bob"] * create.MAX_ATTEMPTS
    assert len(pauses) == create.MAX_ATTEMPTS - 1
