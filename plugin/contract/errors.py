"""The product's one error type, what it is about, and the exit/error codes an engine acts on.

An error is raised with its reason only ("NoSuchEntity: ..."); what it is about (the operation
and the user: `About`) is attached where it is raised or where it leaves a block that knows it
(`attached`, client_errors.about), and the one-line message is composed once, when it is read: like
httpx, whose request_context() (httpx/_exceptions.py) attaches the request to an error
leaving the client.

How a step raises, in one recipe:
- `raise ActionError(reason, category)`: the reason only ("the vault name is taken"), never
  "CreateAccessKey failed for ..." by hand: the invocation's block says that (its `About`);
- what AWS or botocore raised is translated where it is caught: inside the invocation the
  block does it (client_errors.about); a step that names itself uses
  `client_errors.translate(error, "UpdateAccessKey to Inactive")`;
- what happened after the failure ("; key X was deleted, so nothing is left behind") is
  `advice`; a sentence that names its own subject is `about=WHOLE`;
- an error's fields are set once: a block that knows more attaches its context only where
  the error has none (`within`, `attached`), and nothing rewrites a reason.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator


class Category(enum.IntEnum):
    """What an engine should do about an error; the value is the error code and exit status."""

    INTERNAL = 1  # a bug in this plugin
    INVALID_INPUT = 2  # nothing was sent to AWS: fix the input
    REJECTED = 3  # AWS refused, or the configuration is unusable: do not retry as is
    TRANSIENT = 4  # throttled, unreachable or timed out: a retry may succeed


class About:
    """What an error is about, said before its reason: "<operation> failed for <subject>,
    <phase> (<purpose>)". A plain class, not a dataclass: every door imports this module at
    start, and dataclasses (with inspect) would cost the command line's cold start ~4 ms."""

    __slots__ = ("operation", "phase", "purpose", "subject")

    def __init__(self, operation: str, subject: str = "", phase: str = "", purpose: str = ""):
        self.operation = operation  # "CreateAccessKey", "Check Only", "Hand Secret To Vault"
        self.subject = subject  # 'user "bob"', "the signing identity"
        self.phase = phase  # "before any key was created"
        self.purpose = purpose  # why it ran, when not for the action: "testing the connection"

    def __str__(self) -> str:
        said = f"{self.operation} failed"
        if self.subject:
            said += f" for {self.subject}"
        if self.phase:
            said += f", {self.phase}"
        if self.purpose:
            said += f" ({self.purpose})"
        return said


# An error whose reason names what it is about itself ("key X was created but ..."): nothing is
# said before it, whatever block it leaves.
WHOLE = ""


class ActionError(Exception):
    """An error a person can act on: one line, no secret, a category, AWS's code where any.

    `about` (an About, a step's name such as "UpdateAccessKey to Inactive", or WHOLE) is said
    before the reason; `advice` after it ("; key X was deleted, so nothing is left behind").
    """

    def __init__(
        self,
        reason: str,
        category: Category,
        *,
        aws_code: str | None = None,
        request_id: str | None = None,
        about: About | str | None = None,
        advice: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category
        self.aws_code = aws_code
        self.request_id = request_id
        self.about = about
        self.advice = advice

    def within(self, about: About | str | None = None, advice: str = "") -> ActionError:
        """Attach the context of a block this error leaves, where it has none yet (an error
        that already says what it is about keeps its own); returns the error itself."""
        if self.about is None:
            self.about = about
        if not self.advice:
            self.advice = advice
        return self

    @property
    def message(self) -> str:
        """The one line a person reads, without the request id."""
        said = f"{self.about}: {self.reason}" if self.about else self.reason
        return said + self.advice

    @property
    def error_code(self) -> int:
        return int(self.category)

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


@contextlib.contextmanager
def attached(about: About | str) -> Iterator[None]:
    """Within the block, an ActionError that leaves it without context is about `about`."""
    try:
        yield
    except ActionError as error:
        error.within(about)
        raise
