"""Give the memory of large calls back to the system once they end.

A 4 MiB request arrives in grpc's small read slices, allocated by its own threads: glibc keeps
what they free in per-thread arenas, which it returns only when asked. The red team's attack
(bigctx_mem.py: 32 clients, 2 rounds of a 4 MiB context) left the server at 517 MiB after every
call had ended; malloc_trim(0), called by hand then, took it to 168 MiB. Asked once after a
burst of large calls (never more than once a TRIM_SECONDS), and only where the C library is
glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from typing import Any

LARGE_BYTES = 1024 * 1024  # a call carrying at least this asks for a trim when it ends
TRIM_SECONDS = 1.0


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None (musl, macOS: nothing to ask)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class Trimmer:
    """Asks the C library to return freed memory, TRIM_SECONDS after a large call ended (one
    request for a burst of them)."""

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._pending = False
        self._last = 0.0

    def after(self, carried: int) -> None:
        """A call that carried `carried` request bytes has ended (or was refused)."""
        if self._trim is None or carried < LARGE_BYTES or self._pending:
            return
        self._pending = True
        wait = max(TRIM_SECONDS, self._last + TRIM_SECONDS - time.monotonic())
        asyncio.get_running_loop().call_later(wait, self._run)

    def _run(self) -> None:
        self._pending = False
        self._last = time.monotonic()
        self._trim(0)
