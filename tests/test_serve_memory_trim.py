"""serve gives freed memory back to the system: after large calls, and every so often whatever
the calls carried (what a call builds from AWS's answers is freed in glibc's arenas too)."""

from __future__ import annotations

import asyncio

from plugin.hosts.serve import memory


def test_memory_is_given_back_every_so_often_and_after_a_large_call() -> None:
    trims: list[int] = []
    trimmer = memory.Trimmer(trim=trims.append)  # glibc's malloc_trim, counted instead

    async def serving() -> None:
        trimmer.every(0.1)
        await asyncio.sleep(0.55)
        assert len(trims) >= 3, "asked every 0.1 s while the loop ran"
        before = len(trims)
        trimmer.after(memory.LARGE_BYTES)  # and once after a large call, however recent
        await asyncio.sleep(memory.TRIM_SECONDS + 0.2)
        assert len(trims) > before

    asyncio.run(serving())
