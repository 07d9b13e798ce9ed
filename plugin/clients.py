"""Build the boto3 session and IAM client for one invocation from its connection."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from .deadline import Deadline
from .errors import ActionError, Category
from .request import Connection

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

USER_AGENT = "iam-create-access-key/0.1.0"

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0


def _config(deadline: Deadline) -> Config:
    """No retries, and socket timeouts that fit the invocation's time budget.

    CreateAccessKey has no idempotency token: botocore's own retries (5 attempts in legacy mode)
    would turn a response lost after IAM acted into a second key. One attempt; the plugin decides
    itself what is safe to try again (see create.py).
    """
    budget = deadline.seconds
    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=min(CONNECT_TIMEOUT, max(0.5, budget / 4)),
        read_timeout=min(READ_TIMEOUT, max(0.5, budget / 3)),
        user_agent_extra=USER_AGENT,
    )


def session_for(connection: Connection) -> boto3.session.Session:
    """A session from the connection's keys, or from the standard AWS environment and config."""
    return boto3.session.Session(
        aws_access_key_id=connection.access_key_id,
        aws_secret_access_key=connection.secret_access_key,
        aws_session_token=connection.session_token,
        region_name=connection.region,
    )


def credential_secrets(session: boto3.session.Session) -> tuple[str, ...]:
    """The secret key and session token the session will sign with, wherever they came from."""
    credentials = session.get_credentials()
    if credentials is None:
        return ()
    frozen = credentials.get_frozen_credentials()
    return tuple(value for value in (frozen.secret_key, frozen.token) if value)


def iam_client(
    session: boto3.session.Session,
    signing_region: str,
    endpoint_url: str | None,
    deadline: Deadline,
) -> IAMClient:
    """An IAM client that signs for `signing_region` and never retries on its own."""
    client = session.client(
        "iam", region_name=signing_region, endpoint_url=endpoint_url, config=_config(deadline)
    )
    refuse_clear_text(client.meta.endpoint_url)
    return client


def refuse_clear_text(endpoint_url: str) -> None:
    """The response carries a new secret: plain http is allowed only to this machine."""
    parts = urlsplit(endpoint_url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    raise ActionError(
        f"Invalid input: the IAM endpoint {parts.scheme}://{parts.hostname} is not https; the "
        "response would carry the new secret in clear (plain http is allowed to loopback only)",
        Category.INVALID_INPUT,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
