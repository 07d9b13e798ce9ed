"""Test a connection without creating anything: who does it sign in as?"""

from __future__ import annotations

from typing import Any

from . import failures, redaction, sessions
from .clients import USER_AGENT, refuse_clear_text
from .deadline import Deadline, call_within
from .request import Request

OPERATION = "GetCallerIdentity"


def caller_identity(request: Request) -> dict[str, Any]:
    """sts:GetCallerIdentity with the request's connection: {"Account", "Arn", "UserId"}."""
    from botocore.config import Config

    connection = request.connection
    deadline = Deadline(request.timeout)
    head = f"{OPERATION} failed (testing the connection)"
    with redaction.redactor().guarding(*connection.secrets()) as guard:
        try:
            session = sessions.session_for(connection)
            for secret in sessions.credential_secrets(session):
                guard(secret)
            client = session.client(
                "sts",
                region_name=connection.region or session.region_name or "us-east-1",
                endpoint_url=connection.endpoint_url,
                config=Config(user_agent_extra=USER_AGENT, retries={"mode": "standard"}),
            )
            refuse_clear_text(client.meta.endpoint_url)
            identity = call_within(client.get_caller_identity, deadline.remaining())
        except Exception as error:
            raise failures.translate(error, head) from None
    return {name: identity[name] for name in ("Account", "Arn", "UserId")}
