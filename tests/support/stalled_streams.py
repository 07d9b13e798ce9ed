"""Hostile clients of serve: streams opened and never sent, and what the server's process holds."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
from tests.support.grpc_plugin import PluginProcess

EXECUTE = "/integration_pack.Plugin/ExecuteAction"


def resident_kib(process: PluginProcess) -> int:
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class PeakResident:
    """The highest resident memory (KiB) of the server's process while the block runs, sampled
    every 20 ms in a thread of its own."""

    def __init__(self, process: PluginProcess) -> None:
        self.process = process
        self.kib = resident_kib(process)
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.is_set():
            self.kib = max(self.kib, resident_kib(self.process))
            time.sleep(0.02)

    def __enter__(self) -> PeakResident:
        self._watcher.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._watcher.join(5)


def threads_of(process: PluginProcess) -> int:
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads")


class StalledStreams:
    """`count` ExecuteAction streams over `connections` connections that send their headers
    and never their request message (a grpc.aio client whose request iterator never yields),
    held until `release()`; what each ended with, in `codes`."""

    def __init__(
        self, target: str, count: int, connections: int = 1, credentials: Any = None
    ) -> None:
        self.codes: list[grpc.StatusCode] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._release: asyncio.Event | None = None
        asyncio.run_coroutine_threadsafe(
            self._start(target, count, connections, credentials), self._loop
        ).result(30)

    async def _start(self, target: str, count: int, connections: int, credentials: Any) -> None:
        self._release = asyncio.Event()
        release = self._release
        # distinct options: one connection each (grpc would share a subchannel otherwise)
        self._channels = [
            grpc.aio.secure_channel(target, credentials, options=[("test.connection", i)])
            if credentials
            else grpc.aio.insecure_channel(target, options=[("test.connection", i)])
            for i in range(connections)
        ]

        async def never() -> Any:
            await release.wait()
            return
            yield  # an async generator that ends without a message

        async def one(channel: Any) -> None:
            method = channel.stream_unary(
                EXECUTE,
                request_serializer=lambda message: message,
                response_deserializer=pb.ExecuteActionResponse.FromString,
            )
            try:
                await method(never())
            except grpc.aio.AioRpcError as error:
                self.codes.append(error.code())
            else:
                self.codes.append(grpc.StatusCode.OK)

        self._calls = [
            asyncio.ensure_future(one(self._channels[i % connections])) for i in range(count)
        ]
        await asyncio.sleep(0)

    def wait_until_ended(self, seconds: float) -> None:
        async def wait() -> None:
            await asyncio.wait(self._calls, timeout=seconds)

        asyncio.run_coroutine_threadsafe(wait(), self._loop).result(seconds + 10)

    def release(self) -> None:
        async def close() -> None:
            assert self._release is not None
            for call in self._calls:
                call.cancel()
            await asyncio.gather(*self._calls, return_exceptions=True)
            for channel in self._channels:
                await channel.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
