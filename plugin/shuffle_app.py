"""The action as a Shuffle app: the one function its app.py calls, in Shuffle's conditions.

What Shuffle gives an app, read from Shuffle's own code:
- Every action argument and every authentication field arrives as a keyword argument holding a
  string (Shuffle/app_sdk shuffle_sdk.py, execute_action). Authentication reaches the app only
  because api.yaml says `authentication.required: true` (Shuffle/shuffle backend walkoff.go
  copies the fields into each action's parameters only then), and Shuffle's authentication form
  refuses an empty field ("put space": frontend AuthenticationModal.jsx): so a field holding only
  whitespace is "not given" here.
- A `$` reference that resolves to nothing adds a parameter `shuffle_variable_error` ("Failed
  finding '...'", shuffle_sdk.py): the step is refused with that cause, nothing sent.
- The SDK gives a call SHUFFLE_APP_SDK_TIMEOUT seconds, read with int() and 30 when that fails
  (shuffle_sdk.py), then reports a timeout while the call runs on: the action's own deadline is
  taken from that same reading, and is shorter, so it answers in time or deletes what it made.
- The container's environment is Shuffle's worker's fixed list (functions/onprem/worker/
  worker.go: EXECUTIONID, AUTHORIZATION, CALLBACK_URL, BASE_URL, TZ, SHUFFLE_LOGS_DISABLED,
  ACTION, proxies, SHUFFLE_APP_SDK_TIMEOUT) plus the image's ENV and a Helm chart's
  extraEnvVars: the operator's settings (shuffle_settings) come from there.
- With DEBUG=true the SDK logs every argument ("[DEBUG] Param: {...}"), the authentication's
  secret among them: guard_logs masks it on the SDK's logger.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from . import engine, redaction
from .shuffle_settings import AUTHENTICATION, Settings

SDK_TIMEOUT_VARIABLE = "SHUFFLE_APP_SDK_TIMEOUT"
SDK_DEFAULT_TIMEOUT = 30
# Kept back from the SDK's time: the SDK's own work before and after the call.
SDK_MARGIN_SECONDS = 3.0
ACTION = "create_access_key"
VARIABLE_ERROR = "shuffle_variable_error"
DEBUG_HINT = "the app's log has the details when its DEBUG variable is true"


def sdk_timeout(environ: Mapping[str, str]) -> int:
    """The seconds the SDK gives a call, read exactly as shuffle_sdk.py reads them: int() of
    the variable when it is not empty, else (or when int() fails: "45.5") 30."""
    timeout = SDK_DEFAULT_TIMEOUT
    text = environ.get(SDK_TIMEOUT_VARIABLE, "")
    if len(text) > 0:
        with contextlib.suppress(ValueError):  # the SDK logs it and keeps 30
            timeout = int(text)
    return timeout


def action_deadline(environ: Mapping[str, str]) -> float:
    """The action's time: always below what the SDK gives a call."""
    sdk = float(sdk_timeout(environ))
    deadline = sdk - SDK_MARGIN_SECONDS if sdk > 2 * SDK_MARGIN_SECONDS else sdk / 2
    return max(0.5, deadline)


def guard_logs(logger: logging.Logger) -> None:
    """Mask secrets in every line the SDK's logger writes, at any level, in each of its
    handlers (the console, and the buffer the SDK posts to Shuffle as the step's log)."""
    redactor = redaction.install(logger)  # its handlers, and the root logger's
    if redactor not in logger.filters:
        logger.addFilter(redactor)  # records of this logger, before any handler sees them


def create_access_key(fields: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """One Shuffle call: {"success": true, ...result} or {"success": false, "reason", "error_code"}.
    Never raises (the SDK answers a TypeError naming an unexpected keyword argument by calling
    again with that argument removed; any other exception becomes its own failure answer)."""
    try:
        settings = Settings.from_environment(environ)
    except ValueError as error:  # the app's own configuration is wrong: say which variable
        return _failure(str(error), 2)
    if environ.get("DEBUG", "").lower() == "true":  # as the SDK reads it
        logging.getLogger("plugin").setLevel(logging.DEBUG)  # the action's details, redacted
    if VARIABLE_ERROR in fields:
        cause = str(fields[VARIABLE_ERROR]).strip() or "a reference found nothing"
        return _failure(
            f"{cause}: a $ reference in this step's arguments found no value in the "
            "execution; fix the reference (nothing was sent to AWS)",
            2,
        )
    try:
        request = {
            "parameters": {
                **{k: v for k, v in fields.items() if k not in AUTHENTICATION},
                **settings.parameters(fields),
            },
            "connection": _connection(fields),
            "timeout": action_deadline(environ),
        }
        response = engine.execute(request, settings.admit)
    except Exception as error:  # a bug: said in one line, never raised into the SDK
        return _failure(f"internal error ({type(error).__name__})", 1)
    if response["error_code"]:
        return _failure(in_shuffle_words(response["error_message"]), response["error_code"])
    result = response["result"]
    if isinstance(result, str):  # Disable XML To JSON Auto Convert: IAM's XML as it was sent
        return {"success": True, "raw_xml": result}
    return {"success": True, **result}


def _connection(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The authentication fields that hold something: Shuffle's form makes a user type a space
    for a field they mean to leave empty, so whitespace is "not given"."""
    connection = {}
    for name in AUTHENTICATION:
        value = fields.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value not in (None, ""):
            connection[name] = value
    return connection


def in_shuffle_words(message: str) -> str:
    """The action's message as a Shuffle user reads it: the connection's fields are the app's
    authentication, and the details are in the app's log with DEBUG=true (not a --debug flag)."""
    message = re.sub(r"\bconnection\.(?=\w)", "authentication.", message)
    return message.replace("run with --debug for details", DEBUG_HINT)


def _failure(reason: str, code: int) -> dict[str, Any]:
    return {"success": False, "reason": reason, "error_code": code}
