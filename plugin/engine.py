"""The engine interface: a request mapping in, a typed Response out, never an exception."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from .contract.errors import ActionError, Category
from .contract.request import CheckedRequest, parse_request
from .invocation import connection_test, run
from .runtime import redaction

log = logging.getLogger(__name__)


# A host's own rule for checked requests (serve's policy): raises ActionError to refuse one, and
# may return the request to run instead (serve's policy sets the operator's external ID).
Admit = Callable[[CheckedRequest], "CheckedRequest | None"]


@dataclasses.dataclass(frozen=True)
class Response:
    """The engine's answer, after the Blink plugin SDK's ExecuteAction response: error_code 0
    and the result, or a code (errors.Category) and a one-line message. Every door reads this;
    `as_mapping()` is the JSON `execute` prints and the Python API returns."""

    error_code: int
    result: Any
    error_message: str

    @property
    def ok(self) -> bool:
        return self.error_code == 0

    @classmethod
    def success(cls, result: Any) -> Response:
        return cls(0, result, "")

    @classmethod
    def failure(cls, error: ActionError) -> Response:
        return cls(error.error_code, None, str(error))

    def as_mapping(self) -> dict[str, Any]:
        """{"error_code", "result", "error_message"}, as the README documents it."""
        return {
            "error_code": self.error_code,
            "result": self.result,
            "error_message": self.error_message,
        }


def execute(request: Any, admit: Admit | None = None) -> dict[str, Any]:
    """Run the action for an engine.

    `request` is {"parameters": {...}, "connection": {...}, "timeout": seconds}; the answer is
    {"error_code": int, "result": ..., "error_message": str}, after the Blink plugin SDK's
    ExecuteAction response. error_code 0 is success; see errors.Category for the others.
    `admit`, if given, sees the checked request before anything is sent, and may refuse it.
    """
    return respond(request, admit).as_mapping()


def test_connection(request: Any, admit: Admit | None = None) -> dict[str, Any]:  # noqa: PT028
    """Check the request's connection without creating anything.

    The answer's result is {"Account", "Arn", "UserId"} of the identity the action would sign
    as (after assuming the connection's role, if it names one).
    """
    return respond_to_connection_test(request, admit).as_mapping()


def respond(request: Any, admit: Admit | None = None) -> Response:
    """`execute`, as the doors read it: the typed Response."""
    return _answer(run.run, request, admit)


def respond_to_connection_test(request: Any, admit: Admit | None = None) -> Response:
    """`test_connection`, as the doors read it: the typed Response."""
    return _answer(connection_test.caller_identity, request, admit)


def _answer(call: Callable[[CheckedRequest], Any], request: Any, admit: Admit | None) -> Response:
    """The error boundary: a Response for anything, never an exception."""
    redaction.install(logging.getLogger("botocore"), logging.getLogger("urllib3"))
    try:
        checked = parse_request(request)
        if admit is not None:
            checked = admit(checked) or checked
        result = call(checked)
    except ActionError as error:
        return Response.failure(error)
    except Exception:
        # A bug. The traceback goes to the (redacting) log, never into the response.
        log.debug("internal error", exc_info=True)
        return Response.failure(
            ActionError("internal error (run with --debug for details)", Category.INTERNAL)
        )
    return Response.success(result)


def withdraw(request: Any, response: Response, admit: Admit | None = None) -> str | None:
    """Delete the key of a successful response that its caller can no longer receive; return
    its id (None if there was none). Raises ActionError if the key is left behind. `admit`:
    the host's rule the call ran under (it signs in the same way)."""
    if not response.ok:
        return None
    return run.withdraw(_admitted(request, admit), response.result)


def keys_created_since(
    request: Any, since: float, seconds: float, admit: Admit | None = None
) -> list[str] | None:
    """The keys on the request's user made since `since` (time.monotonic()), looked up within
    `seconds`; None if they cannot be listed (for a server that stops mid-create)."""
    try:
        return run.keys_created_since(_admitted(request, admit), since, seconds)
    except Exception:  # said as "could not be listed" by the caller; never raised at exit
        log.debug("listing the keys of an unfinished call failed", exc_info=True)
        return None


def _admitted(request: Any, admit: Admit | None) -> CheckedRequest:
    checked = parse_request(request)
    return (admit(checked) or checked) if admit is not None else checked
