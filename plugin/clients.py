"""Build the boto3 session and IAM client for one invocation from its connection."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from .deadline import Deadline
from .errors import ActionError, Category

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
        f"the endpoint {parts.scheme}://{parts.hostname} is not https, and the answers would "
        "carry secrets in clear (plain http is allowed to loopback only)",
        Category.INVALID_INPUT,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
