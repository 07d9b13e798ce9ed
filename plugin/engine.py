"""The engine interface: a request mapping in, a response mapping out, never an exception."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .contract.errors import ActionError, Category
from .contract.request import Request, parse_request
from .invocation import connection_test as check
from .invocation import run as action
from .runtime import redaction

log = logging.getLogger(__name__)


# A host's own rule for checked requests (serve's policy): raises ActionError to refuse one, and
# may return the request to run instead (serve's policy sets the operator's external ID).
Admit = Callable[[Request], "Request | None"]


def execute(request: Any, admit: Admit | None = None) -> dict[str, Any]:
    """Run the action for an engine.

    `request` is {"parameters": {...}, "connection": {...}, "timeout": seconds}; the answer is
    {"error_code": int, "result": ..., "error_message": str}, after the Blink plugin SDK's
    ExecuteAction response. error_code 0 is success; see errors.Category for the others.
    `admit`, if given, sees the checked request before anything is sent, and may refuse it.
    """
    return _answer(action.run, request, admit)


def test_connection(request: Any, admit: Admit | None = None) -> dict[str, Any]:  # noqa: PT028
    """Check the request's connection without creating anything.

    The answer's result is {"Account", "Arn", "UserId"} of the identity the action would sign
    as (after assuming the connection's role, if it names one).
    """
    return _answer(check.caller_identity, request, admit)


def _answer(run: Callable[[Request], Any], request: Any, admit: Admit | None) -> dict[str, Any]:
    """The error boundary: a response mapping for anything, never an exception."""
    redaction.install(logging.getLogger("botocore"), logging.getLogger("urllib3"))
    try:
        checked = parse_request(request)
        if admit is not None:
            checked = admit(checked) or checked
        result = run(checked)
    except ActionError as error:
        return failure(error)
    except Exception:
        # A bug. The traceback goes to the (redacting) log, never into the response.
        log.debug("internal error", exc_info=True)
        return failure(
            ActionError("internal error (run with --debug for details)", Category.INTERNAL)
        )
    return {"error_code": 0, "result": result, "error_message": ""}


def withdraw(request: Any, response: dict[str, Any], admit: Admit | None = None) -> str | None:
    """Delete the key of a successful response that its caller can no longer receive; return
    its id (None if there was none). Raises ActionError if the key is left behind. `admit`:
    the host's rule the call ran under (it signs in the same way)."""
    if response["error_code"] != 0:
        return None
    return action.withdraw(_admitted(request, admit), response["result"])


def keys_created_since(
    request: Any, since: float, seconds: float, admit: Admit | None = None
) -> list[str] | None:
    """The keys on the request's user made since `since` (time.monotonic()), looked up within
    `seconds`; None if they cannot be listed (for a server that stops mid-create)."""
    try:
        return action.keys_created_since(_admitted(request, admit), since, seconds)
    except Exception:  # said as "could not be listed" by the caller; never raised at exit
        log.debug("listing the keys of an unfinished call failed", exc_info=True)
        return None


def _admitted(request: Any, admit: Admit | None) -> Request:
    checked = parse_request(request)
    return (admit(checked) or checked) if admit is not None else checked


def failure(error: ActionError) -> dict[str, Any]:
    return {"error_code": error.error_code, "result": None, "error_message": str(error)}
