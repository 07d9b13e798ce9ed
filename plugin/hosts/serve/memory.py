"""Give the memory of large calls back to the system once they end.

A 4 MiB request arrives in grpc's small read slices, allocated by its own threads: glibc keeps
what they free in per-thread arenas, which it returns only when asked. The red team's attack
(bigctx_mem.py: 32 clients, 2 rounds of a 4 MiB context) left the server at 517 MiB after every
call had ended; malloc_trim(0), called by hand then, took it to 168 MiB. Asked once after a
burst of large calls (never more than once a TRIM_SECONDS), every EVERY_SECONDS whatever the
calls were, and only where the C library is glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import Callable
from typing import Any

LARGE_BYTES = 1024 * 1024  # a call carrying at least this asks for a trim when it ends
TRIM_SECONDS = 1.0
# And every so often whatever the calls carried: what a call builds from AWS's answers (up to
# 256 KiB of body and 128 KiB of headers each, in the workers of calls given up on too) is freed
# in the same arenas; the tenth red team saw a server hold 230 MiB after such calls had ended,
# where a fresh one under the same attack held 107.
EVERY_SECONDS = 10.0


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None (musl, macOS: nothing to ask)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class Trimmer:
    """Asks the C library to return freed memory, TRIM_SECONDS after a large call ended (one
    request for a burst of them)."""

    def __init__(self, trim: Callable[[int], Any] | None = None) -> None:
        """`trim`: what gives memory back (glibc's malloc_trim unless given)."""
        self._trim = trim if trim is not None else _malloc_trim()
        self._pending = False
        self._last = 0.0

    def after(self, carried: int) -> None:
        """A call that carried `carried` request bytes has ended (or was refused)."""
        if self._trim is None or carried < LARGE_BYTES or self._pending:
            return
        self._pending = True
        wait = max(TRIM_SECONDS, self._last + TRIM_SECONDS - time.monotonic())
        asyncio.get_running_loop().call_later(wait, self._run)

    def every(self, seconds: float = EVERY_SECONDS) -> None:
        """Ask every `seconds` as well, on the running loop, for as long as it runs."""
        if self._trim is None:
            return
        loop = asyncio.get_running_loop()

        def again() -> None:
            if time.monotonic() - self._last >= seconds:
                self._run(pending=self._pending)
            loop.call_later(seconds, again)

        loop.call_later(seconds, again)

    def _run(self, pending: bool = False) -> None:
        self._pending = pending  # a trim asked for after a large call still comes
        self._last = time.monotonic()
        self._trim(0)
