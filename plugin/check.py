"""Test a connection without creating anything: who does it sign in as?"""

from __future__ import annotations

from typing import Any

from . import failures, redaction, sessions
from .deadline import Deadline, call_within
from .request import Request

OPERATION = "GetCallerIdentity"


def caller_identity(request: Request) -> dict[str, Any]:
    """sts:GetCallerIdentity with the request's connection: {"Account", "Arn", "UserId"}."""
    connection = request.connection
    deadline = Deadline(request.timeout)
    with (
        redaction.redactor().guarding(*connection.secrets()) as guard,
        failures.about(failures.testing_the_connection(OPERATION)),
    ):
        session = sessions.signed_in(connection, guard)
        client = sessions.sts_client(session, connection)
        identity = call_within(client.get_caller_identity, deadline)
    return {name: identity[name] for name in ("Account", "Arn", "UserId")}
