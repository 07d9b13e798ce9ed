"""The engine interface: a request mapping in, a response mapping out, never an exception."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import action, check, redaction
from .errors import ActionError, Category
from .request import Request, parse_request

log = logging.getLogger(__name__)


def execute(request: Any) -> dict[str, Any]:
    """Run the action for an engine.

    `request` is {"parameters": {...}, "connection": {...}, "timeout": seconds}; the answer is
    {"error_code": int, "result": ..., "error_message": str}, after the Blink plugin SDK's
    ExecuteAction response. error_code 0 is success; see errors.Category for the others.
    """
    return _answer(action.run, request)


def test_connection(request: Any) -> dict[str, Any]:
    """Check the request's connection without creating anything.

    The answer's result is {"Account", "Arn", "UserId"} of the identity the action would sign
    as (after assuming the connection's role, if it names one).
    """
    return _answer(check.caller_identity, request)


def _answer(run: Callable[[Request], Any], request: Any) -> dict[str, Any]:
    """The error boundary: a response mapping for anything, never an exception."""
    redaction.install(logging.getLogger("botocore"), logging.getLogger("urllib3"))
    try:
        result = run(parse_request(request))
    except ActionError as error:
        return failure(error)
    except Exception:
        # A bug. The traceback goes to the (redacting) log, never into the response.
        log.debug("internal error", exc_info=True)
        return failure(
            ActionError("internal error (run with --debug for details)", Category.INTERNAL)
        )
    return {"error_code": 0, "result": result, "error_message": ""}


def withdraw(request: Any, response: dict[str, Any]) -> str | None:
    """Delete the key of a successful response that its caller can no longer receive; return
    its id (None if there was none). Raises ActionError if the key is left behind."""
    if response["error_code"] != 0:
        return None
    return action.withdraw(parse_request(request), response["result"])


def failure(error: ActionError) -> dict[str, Any]:
    return {"error_code": error.error_code, "result": None, "error_message": str(error)}
