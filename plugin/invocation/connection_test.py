"""Test a connection without creating anything: who does it sign in as?"""

from __future__ import annotations

from typing import Any

from plugin.aws import client_errors, sessions
from plugin.contract.request import CheckedRequest
from plugin.runtime import redaction
from plugin.runtime.deadline import Deadline, call_within

OPERATION = "GetCallerIdentity"


def caller_identity(checked: CheckedRequest) -> dict[str, Any]:
    """sts:GetCallerIdentity with the request's connection: {"Account", "Arn", "UserId"}."""
    connection = checked.connection
    deadline = Deadline.from_timeout(checked.timeout)
    with (
        redaction.redactor().guarding(*connection.secrets()) as guard,
        client_errors.about(client_errors.testing_the_connection(OPERATION)),
    ):
        session = sessions.signed_in(connection, guard)
        client = sessions.sts_client(session, connection)
        identity = call_within(client.get_caller_identity, deadline)
    return {name: identity[name] for name in ("Account", "Arn", "UserId")}
