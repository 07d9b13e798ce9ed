"""The engine interface: a request mapping in, a response mapping out, never an exception."""

from __future__ import annotations

import logging
from typing import Any

from . import action, redaction
from .errors import ActionError, Category
from .request import parse_request

log = logging.getLogger(__name__)


def execute(request: Any) -> dict[str, Any]:
    """Run the action for an engine.

    `request` is {"parameters": {...}, "connection": {...}}; the answer is
    {"error_code": int, "result": ..., "error_message": str}, after the Blink plugin SDK's
    ExecuteAction response. error_code 0 is success; see errors.Category for the others.
    """
    redaction.install(logging.getLogger("botocore"), logging.getLogger("urllib3"))
    try:
        result = action.run(parse_request(request))
    except ActionError as error:
        return failure(error)
    except Exception:
        # A bug. The traceback goes to the (redacting) log, never into the response.
        log.debug("internal error", exc_info=True)
        return failure(
            ActionError("internal error (run with --debug for details)", Category.INTERNAL)
        )
    return {"error_code": 0, "result": result, "error_message": ""}


def failure(error: ActionError) -> dict[str, Any]:
    return {"error_code": error.error_code, "result": None, "error_message": str(error)}
