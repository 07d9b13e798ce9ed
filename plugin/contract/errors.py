"""The product's one error type, and the exit/error codes an engine acts on."""

from __future__ import annotations

import enum


class Category(enum.IntEnum):
    """What an engine should do about an error; the value is the error code and exit status."""

    INTERNAL = 1  # a bug in this plugin
    INVALID_INPUT = 2  # nothing was sent to AWS: fix the input
    REJECTED = 3  # AWS refused, or the configuration is unusable: do not retry as is
    TRANSIENT = 4  # throttled, unreachable or timed out: a retry may succeed


class ActionError(Exception):
    """An error a person can act on: one line, no secret, a category, AWS's code where any."""

    def __init__(
        self,
        message: str,
        category: Category,
        *,
        aws_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.aws_code = aws_code
        self.request_id = request_id

    @property
    def error_code(self) -> int:
        return int(self.category)

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message
