"""The one place that calls IAM CreateAccessKey, keeping the response body exactly as IAM sent it.

CreateAccessKey has no idempotency token, so only failures that happened before IAM could act
are tried again: a connection that was never opened, and throttling (IAM rejects before it
acts). Anything ambiguous (a reset, a read timeout, a 5xx) is reported, never retried blindly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 0.25
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
_EVENT = "after-call.iam.CreateAccessKey"
_RAW_BODY = "iam-create-access-key.raw-body"


def _keep_raw_body(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    """botocore hook: put IAM's own bytes beside the parsed response of this very call.

    `parsed` is the dict this call returns, so the body travels with its own call even when
    threads share one client; nothing is kept on the client.
    """
    if http_response is not None and http_response.status_code < 300:
        parsed[_RAW_BODY] = http_response.content


def create_access_key(
    client: IAMClient,
    user_name: str | None,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """Create one access key and return IAM's raw XML response body."""
    client.meta.events.register(_EVENT, _keep_raw_body, unique_id=_RAW_BODY)
    arguments = {"UserName": user_name} if user_name else {}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response: dict[str, Any] = client.create_access_key(**arguments)  # type: ignore[assignment]
            return bytes(response.pop(_RAW_BODY))
        except (EndpointConnectionError, ConnectTimeoutError):
            if attempt == MAX_ATTEMPTS:
                raise
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in THROTTLING_CODES:
                raise
            if attempt == MAX_ATTEMPTS:
                raise
        # Full jitter, so that many workers throttled together do not come back together.
        sleep(random.uniform(0, BACKOFF_SECONDS * 2**attempt))  # noqa: S311 (not cryptographic)
    raise AssertionError("unreachable")  # pragma: no cover
