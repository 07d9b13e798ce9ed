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
  In a loop (`$list.#`) the SDK runs every item one after another inside that one wait
  (run_recursed_items: `for subparams in param_multiplier: func(**subparams)`), so the time is
  the whole run's, not each item's: it is counted from the run's start, which execute_action
  records as the AppBase attribute `action_result["started_at"]` (time.time_ns()) before any item
  runs. An item with too little of it left is refused before anything is sent.
- The container's environment is Shuffle's worker's fixed list (functions/onprem/worker/
  worker.go: EXECUTIONID, AUTHORIZATION, CALLBACK_URL, BASE_URL, TZ, SHUFFLE_LOGS_DISABLED,
  ACTION, proxies, SHUFFLE_APP_SDK_TIMEOUT) plus the image's ENV and a Helm chart's
  extraEnvVars: the operator's settings (hosts/shuffle/settings) come from there.
- With DEBUG=true the SDK logs every argument ("[DEBUG] Param: {...}"), the authentication's
  secret among them: guard_logs masks it on the SDK's logger.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from plugin import engine
from plugin.runtime import redaction

from .settings import AUTHENTICATION, Settings

SDK_TIMEOUT_VARIABLE = "SHUFFLE_APP_SDK_TIMEOUT"
SDK_DEFAULT_TIMEOUT = 30
# Kept back from the SDK's time: the SDK's own work before and after the call.
SDK_MARGIN_SECONDS = 3.0
# The least time a call is started with: one CreateAccessKey and, if its answer is late, the
# deletion of what it made (the action keeps a third of its time for that: 0.67 s of 2 s; less
# is a deletion racing the SDK's timeout on a loaded worker).
MIN_SECONDS = 2.0
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
    """The action's time from the run's start: always below what the SDK gives (0 or less when
    the SDK gives none: SHUFFLE_APP_SDK_TIMEOUT=0 makes future.result(0) give up at once)."""
    sdk = float(sdk_timeout(environ))
    return sdk - SDK_MARGIN_SECONDS if sdk > 2 * SDK_MARGIN_SECONDS else sdk / 2


def run_started(app: object) -> float | None:
    """When the SDK started this action's run (seconds since the epoch), from the AppBase
    attribute execute_action sets first (`action_result["started_at"]`, time.time_ns()); None
    when an SDK does not have it (the time then counts from this call)."""
    result = getattr(app, "action_result", None)
    started = result.get("started_at") if isinstance(result, dict) else None
    if isinstance(started, int) and not isinstance(started, bool) and started > 0:
        return started / 1e9
    return None


def time_left(environ: Mapping[str, str], started: float | None, now: float) -> float:
    """Seconds this call (one item of a loop, or the only one) may still use: the action's
    deadline counted from the run's start, shared by every item the SDK runs in that wait."""
    return action_deadline(environ) - (0.0 if started is None else max(0.0, now - started))


def guard_logs(logger: logging.Logger) -> None:
    """Mask secrets in every line the SDK's logger writes, at any level, in each of its
    handlers (the console, and the buffer the SDK posts to Shuffle as the step's log)."""
    redactor = redaction.install(logger)  # its handlers, and the root logger's
    if redactor not in logger.filters:
        logger.addFilter(redactor)  # records of this logger, before any handler sees them


def create_access_key(
    fields: Mapping[str, Any], environ: Mapping[str, str], started: float | None = None
) -> dict[str, Any]:
    """One Shuffle call: {"success": true, ...result} or {"success": false, "reason", "error_code"}.
    `started`: when the SDK's run began (run_started). Never raises (the SDK answers a TypeError
    naming an unexpected keyword argument by calling again with that argument removed; any
    other exception becomes its own failure answer)."""
    left = time_left(environ, started, time.time())
    try:
        settings = Settings.from_environment(environ)
    except ValueError as error:  # the app's own configuration is wrong: say which variable
        return _failure(str(error), 2)
    if left < MIN_SECONDS:
        return _no_time(sdk_timeout(environ), action_deadline(environ) >= MIN_SECONDS)
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
            "timeout": left,
        }
        response = engine.respond(request, settings.admit)
    except Exception as error:  # a bug: said in one line, never raised into the SDK
        return _failure(f"internal error ({type(error).__name__})", 1)
    if not response.ok:
        return _failure(in_shuffle_words(response.error_message), response.error_code)
    result = response.result
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


def _no_time(sdk: int, ever: bool) -> dict[str, Any]:
    """The refusal of a call the SDK's time does not cover (nothing sent); `ever`: whether a
    call that comes first in the run would have had enough."""
    if not ever:  # the setting (0, negative, up to 3): no call can ever run
        return _failure(
            f"{SDK_TIMEOUT_VARIABLE} is {sdk}: Shuffle's SDK gives this step too little time, "
            "so the app does not start it; Shuffle's administrator sets it to a number of "
            "seconds (30 when unset) on Orborus (nothing was sent to AWS)",
            3,
        )
    return _failure(
        f"No time left for this call: Shuffle's SDK gives the whole step, every item of a loop "
        f"together, {sdk} seconds ({SDK_TIMEOUT_VARIABLE}) and this item came too late in it; "
        "loop over fewer items per step, or have Shuffle's administrator raise "
        f"{SDK_TIMEOUT_VARIABLE} on Orborus (nothing was sent to AWS)",
        4,
    )


def _failure(reason: str, code: int) -> dict[str, Any]:
    return {"success": False, "reason": reason, "error_code": code}
