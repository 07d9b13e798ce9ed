"""`iam-create-access-key serve` as a process of its own, and a real gRPC client for it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any

import grpc

from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
from plugin.hosts.serve.protocol import integration_pack_pb2_grpc as pb_grpc
from tests.support.paths import ROOT

READY = re.compile(r"serving integration_pack\.Plugin on ([\w.:]+):(\d+) \(([^)]*)\)")


# The local IAM endpoint and the fault proxy listen on loopback ports the tests choose.
LOCAL_ENDPOINTS = ("--allow-endpoint", "http://127.0.0.1:*")


class PluginProcess:
    """The server on a free loopback port; its stderr is kept for the tests to read. Unless
    told otherwise, it lets connections name the tests' local endpoints."""

    def __init__(
        self,
        *arguments: str,
        env: dict[str, str] | None = None,
        local_endpoints: bool = True,
        port: str = "0",
        open_files: tuple[int, int] | None = None,
    ) -> None:
        """`open_files`: the (soft, hard) limit on open files the process starts with, as a
        container runtime sets it (RLIMIT_NOFILE)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environment.update(
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            **(env or {}),
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                *(_with_open_files(*open_files) if open_files else ()),
                "-m",
                "plugin",
                "serve",
                "--port",
                port,
                *(LOCAL_ENDPOINTS if local_endpoints else ()),
                *arguments,
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        first = self.process.stderr.readline()
        ready = READY.search(first)
        if ready is None:
            self.process.kill()
            raise RuntimeError(f"serve did not start: {first}{self.process.stderr.read()}")
        self.ready_line = first
        self.port = int(ready.group(2))
        self.mode = ready.group(3)
        self.output: list[str] = [first]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stub(self, credentials: Any = None, host: str | None = None) -> Any:
        return pb_grpc.PluginStub(self.channel(credentials, host))

    def channel(self, credentials: Any = None, host: str | None = None) -> Any:
        address = f"{host}:{self.port}" if host else self.address
        if credentials is None:
            return grpc.insecure_channel(address)
        return grpc.secure_channel(address, credentials)

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def text(self) -> str:
        return "".join(self.output)


def _with_open_files(soft: int, hard: int) -> tuple[str, ...]:
    """Python's arguments that set the limit on open files, then run the rest of the command
    line (`-m plugin serve ...`) in the same process (exec keeps the limit)."""
    code = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    return ("-c", code)


def execute_request(
    parameters: dict[str, str], connection: dict[str, str] | None, **more: Any
) -> Any:
    """An ExecuteActionRequest as a runner sends it: every value a string."""
    connections = {"aws": pb.ConnectionInstance(name="aws", data=connection)} if connection else {}
    return pb.ExecuteActionRequest(
        name=more.pop("name", "iam_create_access_key"),
        parameters=parameters,
        connections=connections,
        **more,
    )
