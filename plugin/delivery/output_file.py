"""Deliver the result into a new file only its owner can read, for people who must not see the
secret on a terminal.

The file is created before the key, so that a path that cannot be written fails the invocation
while nothing has been sent (a key created and then not delivered would be lost).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from plugin.contract.errors import ActionError, Category

MODE = 0o600


class Reservation:
    """The new file; it is kept only once `deliver()` has written and synced the result."""

    def __init__(self, path: str, stream: IO[str]) -> None:
        self.path = path
        self.stream = stream
        self.kept = False

    def deliver(self, text: str) -> None:
        """Write `text`, flush and fsync it, then keep the file; ActionError if any of that
        fails (a full disk, a file size limit): the result is then not delivered."""
        try:
            self.stream.write(text)
            self.stream.flush()
            os.fsync(self.stream.fileno())
        except OSError as error:
            raise ActionError(
                f"--output-file {self.path} could not be written ({error.strerror})",
                Category.TRANSIENT,
            ) from None
        self.kept = True


@contextlib.contextmanager
def reserved(path: str) -> Iterator[Reservation]:
    """Create `path` (0600, never through a symlink, never over a file); remove it unless kept."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, MODE)
    except FileExistsError:
        raise ActionError(
            f"Invalid input: --output-file {path} already exists (or is a link); it is never "
            "overwritten",
            Category.INVALID_INPUT,
        ) from None
    except OSError as error:
        raise ActionError(
            f"Invalid input: --output-file {path} cannot be created ({error.strerror})",
            Category.INVALID_INPUT,
        ) from None
    os.fchmod(descriptor, MODE)  # exactly 0600, whatever the umask
    reservation = Reservation(path, os.fdopen(descriptor, "w", encoding="utf-8"))
    try:
        yield reservation
    finally:
        with contextlib.suppress(OSError):  # what could not be flushed was not delivered
            reservation.stream.close()
        if not reservation.kept:
            Path(path).unlink(missing_ok=True)
