"""Keep secrets out of every log record: a logging filter built from the schemas' secret marks.

Two nets, because neither alone is enough:
- by name: any field the schemas mark `secret`/`writeOnly` (SecretAccessKey, secret_access_key,
  session_token, ...) has its value masked wherever it appears as XML, JSON, a Python repr or a
  query string. This catches botocore's wire log of the response body, which is written before
  the plugin has seen the new secret.
- by value: while an invocation runs, the connection's secrets and the new secret are known, and
  any record that invocation writes containing one of them verbatim is masked (a session token
  travels in a header). The values belong to the invocation (a context variable, which follows
  it into the workers that make its calls under a deadline), never to the process: under
  `serve`, one tenant's secrets must not mask another tenant's lines, nor the server's own.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator

from plugin.contract import resources
from plugin.contract.secret_fields import secret_field_names

from .context import bound

MASK = "***"
# Values shorter than this are masked as whole words only (see Redactor.redact_values).
SHORT_VALUE = 6


def _patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    alternatives = "|".join(re.escape(name) for name in names)
    return [
        # <SecretAccessKey>value</SecretAccessKey>, or with a namespace prefix (<ns2:...>)
        re.compile(rf"(<(?:[\w.-]+:)?(?:{alternatives})>)[^<]*(</)", re.IGNORECASE),
        # "SecretAccessKey": "value", 'SecretAccessKey': 'value', 'X-Amz-Security-Token': b'value'
        # (JSON, and Python reprs of str and bytes), and JSON inside a JSON string (a vault's
        # SecretString or SSM Value: \"SecretAccessKey\": \"value\", backslashes doubled in reprs)
        re.compile(
            rf"""(\\*["']?(?:{alternatives})\\*["']?\s*[:=]\s*b?\\*["'])[^"'\\]*(\\*["'])""",
            re.IGNORECASE,
        ),
        # SecretAccessKey=value in a query string or a key=value line
        re.compile(rf"((?:{alternatives})=)[^&\s\"',;]*()", re.IGNORECASE),
        # x-amz-security-token:value, a header line of botocore's canonical request
        re.compile(rf"((?:{alternatives}):)(?![\s\"'])[^\s,}}]+()", re.IGNORECASE),
    ]


class _Guarded:
    """The values one invocation guards (and those of the invocation around it, if any)."""

    def __init__(self, outer: _Guarded | None) -> None:
        self.outer = outer
        self.values: list[str] = []
        self.lock = threading.Lock()

    def all(self) -> list[str]:
        found: list[str] = []
        guarded: _Guarded | None = self
        while guarded is not None:
            with guarded.lock:
                found += guarded.values
            guarded = guarded.outer
        return sorted(set(found), key=len, reverse=True)  # a longer value before its parts


_GUARDED: contextvars.ContextVar[_Guarded | None] = contextvars.ContextVar(
    "redaction_guarded", default=None
)


class Redactor(logging.Filter):
    """A logging filter that masks secrets in the message, its arguments and its traceback."""

    def __init__(self, field_names: Iterable[str]) -> None:
        super().__init__("")
        self._patterns = _patterns(field_names)

    def redact(self, text: str) -> str:
        return self.redact_fields(self.redact_values(text))

    def redact_values(self, text: str) -> str:
        """Mask the values the current invocation guards (cheap: do it while it runs). A value
        shorter than SHORT_VALUE is masked only where it stands alone: a caller's one-letter
        "secret" must not mask that letter in every word of the lines about its call."""
        for value in self._current_values():
            if len(value) >= SHORT_VALUE:
                text = text.replace(value, MASK)
            elif value in text:
                text = re.sub(rf"(?<![^\W_]){re.escape(value)}(?![^\W_])", MASK, text)
        return text

    def redact_fields(self, text: str) -> str:
        """Mask the values of secret-named fields (regular expressions: do it once a text)."""
        for pattern in self._patterns:
            text = pattern.sub(rf"\g<1>{MASK}\g<2>", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    @contextlib.contextmanager
    def guarding(self, *values: str | None) -> Iterator[Callable[[str], None]]:
        """Mask these values verbatim in every record this invocation writes until the block
        ends (in its thread, and in the workers that run in its context).

        The block receives a function that guards one more value learnt inside it (the new
        secret); everything guarded is forgotten when the block ends, so no secret stays in
        this process's memory longer than its invocation.
        """
        guarded = _Guarded(_GUARDED.get())

        def hold(value: str | None) -> None:
            if value:
                with guarded.lock:
                    guarded.values.append(value)

        for value in values:
            hold(value)
        try:
            with bound(_GUARDED, guarded):
                yield hold
        finally:
            with guarded.lock:
                guarded.values.clear()

    def _current_values(self) -> list[str]:
        guarded = _GUARDED.get()
        return [] if guarded is None else guarded.all()


def redactor_field_names() -> tuple[str, ...]:
    """The field names the process's redactor masks: every shipped schema's secret marks."""
    kinds = ("input", "output", "connection")
    return secret_field_names(resources.schema(kind) for kind in kinds)


@functools.cache
def redactor() -> Redactor:
    """The process's one redactor."""
    return Redactor(redactor_field_names())


def install(*loggers: logging.Logger) -> Redactor:
    """Put the redactor on every handler of the root logger and of `loggers` (idempotent)."""
    filter_ = redactor()
    for logger in (logging.getLogger(), *loggers):
        for handler in logger.handlers:
            if filter_ not in handler.filters:
                handler.addFilter(filter_)
    return filter_
