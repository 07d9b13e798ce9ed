"""Calls to serve as its tests make them: the server's own (ambient) identity, a create over gRPC."""

from __future__ import annotations

from typing import Any

from tests.support.grpc_plugin import execute_request
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM


def ambient(iam: LocalIAM) -> dict[str, str]:
    """The server's own AWS identity and endpoint, from its environment."""
    return {
        "AWS_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": iam.url,
    }


def create(stub: Any, user: str, connection: dict[str, str] | None, **parameters: str) -> Any:
    return stub.ExecuteAction(
        execute_request({"user_name": user, **parameters}, connection), timeout=30
    )
