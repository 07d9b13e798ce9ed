"""The IAM client an invocation calls through: no retries of its own, timeouts that fit the
invocation's budget, an endpoint that never carries a secret in clear. Clients are kept per
session, region, endpoint and timeouts, since making one costs more than the call itself."""

from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from botocore.config import Config

from plugin.contract.errors import ActionError, Category
from plugin.runtime.deadline import Deadline, bound_sends

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from botocore.session import Session
    from mypy_boto3_iam import IAMClient

USER_AGENT = "iam-create-access-key/0.1.0"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

MAX_CLIENTS = 128
_clients: dict[tuple[Session, str, str, float, float], IAMClient] = {}
_lock = threading.Lock()


def timeouts(deadline: Deadline) -> tuple[float, float]:
    """Socket timeouts (connect, read) that leave room in the budget to reconcile."""
    budget = deadline.seconds
    return min(CONNECT_TIMEOUT, max(0.5, budget / 4)), min(READ_TIMEOUT, max(0.5, budget / 3))


def iam_client(
    session: Session,
    signing_region: str,
    endpoint_url: str | None,
    deadline: Deadline,
    prepare: Sequence[Callable[[IAMClient], None]] = (),
) -> IAMClient:
    """An IAM client that signs for `signing_region` and never retries on its own.

    CreateAccessKey has no idempotency token: botocore's own retries (5 attempts in legacy mode)
    would turn a response lost after IAM acted into a second key. One attempt; the plugin decides
    itself what is safe to try again (see invocation/create.py).

    `prepare`: the operations' own hooks (the invocation's: raw bodies kept), registered once
    when the client is made; a kept client is not prepared again, so every caller passes the same.
    """
    connect, read = timeouts(deadline)
    key = (session, signing_region, endpoint_url or "", connect, read)  # sessions hash by identity
    with _lock:  # a botocore session is not safe to make clients from in two threads at once
        client = _clients.get(key)
        if client is None:
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=connect,
                read_timeout=read,
                user_agent_extra=USER_AGENT,
            )
            client = cast(
                "IAMClient",
                session.create_client(
                    "iam", region_name=signing_region, endpoint_url=endpoint_url, config=config
                ),
            )
            refuse_clear_text(client.meta.endpoint_url)
            bound_sends(client)  # a dripping endpoint keeps to the invocation's time
            for hook in prepare:
                hook(client)
            _clients[key] = client
            if len(_clients) > MAX_CLIENTS:
                del _clients[next(iter(_clients))]  # the oldest
    return client


def forget() -> None:
    with _lock:
        _clients.clear()


def refuse_clear_text(endpoint_url: str) -> None:
    """The answers carry secrets: plain http is allowed only to this machine."""
    parts = urlsplit(endpoint_url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return
    where = parts.netloc.rpartition("@")[2]  # host and port as given, never a user name
    raise ActionError(
        f"the endpoint {parts.scheme}://{where} is not https, and the answers would "
        "carry secrets in clear (plain http is allowed to loopback only)",
        Category.INVALID_INPUT,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
