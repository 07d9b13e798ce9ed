"""Fixtures: one local IAM endpoint for the session, and a clean AWS environment per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.custody_figures import CUSTODY_FIGURES
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM
from tests.support.stalled_streams import StalledStreams

_AWS_VARIABLES = [name for name in os.environ if name.startswith("AWS_")]


@pytest.fixture(scope="session")
def iam() -> Iterator[LocalIAM]:
    endpoint = LocalIAM()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def proxy_server(iam: LocalIAM) -> Iterator[FaultProxy]:
    server = FaultProxy(iam.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes, str, str]]:
    """A CA, a server certificate and client certificates (see tests/support/pki.py), as files and PEM."""
    from tests.support.pki import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """`serve` processes (tests/grpc_plugin.PluginProcess) a test starts, stopped whatever
    happens to it."""
    processes: list[Any] = []
    yield processes
    for process in processes:
        process.stop()


@pytest.fixture
def stalled() -> Iterator[list[StalledStreams]]:
    """Stalled streams a test opens, released when it ends."""
    held: list[StalledStreams] = []
    yield held
    for streams in held:
        streams.release()


@pytest.fixture
def proxy(proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy in front of the local endpoint, with no fault left from another test."""
    proxy_server.clear()
    yield proxy_server
    proxy_server.clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CUSTODY_FIGURES:
        return
    terminalreporter.section("secret custody under faults")
    terminalreporter.write_line(
        "| fault | runs | keys created | secrets delivered | orphans left |"
    )
    terminalreporter.write_line("|---|---|---|---|---|")
    for name, runs, created, delivered, orphans in CUSTODY_FIGURES:
        terminalreporter.write_line(f"| {name} | {runs} | {created} | {delivered} | {orphans} |")


@pytest.fixture(autouse=True)
def clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach a real account or read the developer's AWS config."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def cli_env(iam: LocalIAM) -> dict[str, str]:
    """The environment of a person who points the command at the local endpoint."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ADMIN_KEY_ID,
        AWS_SECRET_ACCESS_KEY=ADMIN_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_IAM=iam.url,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env
