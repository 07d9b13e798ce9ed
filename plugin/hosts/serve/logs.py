"""The server's own log: warnings (a key deleted for a caller that hung up, a key left behind,
a call stopped at exit) on stderr, through the redactor, as text or one JSON object a line.
Every line about a call carries its id, the one its log_buffer shows."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator

from plugin.runtime import redaction
from plugin.runtime.context import bound

TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)

_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)


@contextlib.contextmanager
def about_call(call_id: str) -> Iterator[None]:
    """Within the block (and its workers), log lines are about this call."""
    with bound(_CALL_ID, call_id):
        yield


class _CallId(logging.Filter):
    """Gives each record the id of the call it is about (None outside calls), unless the code
    that logs it names one (`extra={"call_id": ...}`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            record.call_id = _CALL_ID.get()
        return True


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        call_id = getattr(record, "call_id", None)
        about = f" [call {call_id}]" if call_id else ""
        text = f"{self.formatTime(record)} {record.levelname}{about} {record.getMessage()}"
        return f"{text}\n{record.exc_text}" if record.exc_text else text


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "call_id": getattr(record, "call_id", None),
        }
        if record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line)


def install(log_format: str) -> None:
    """Warnings of every logger on stderr (or, after --debug, everything the command line
    already sends there), redacted, in `log_format`, each with its call id."""
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    redaction.install(logging.getLogger("botocore"), logging.getLogger("urllib3"))
    formatter = _Json() if log_format == JSON else _Text()
    for handler in root.handlers:
        handler.setFormatter(formatter)
        # the call's id first, then the redactor (installed above) rewrites the message
        handler.filters.insert(0, _CallId())
