"""`serve --health-port` (issue 20): health answered whatever callers hold on the main port.

The attack (the red team's conncap.sh): more connections than the main port's cap
(serve.server.MAX_CONNECTIONS), each idle or stalled, or under mutual TLS bare TCP sockets that
never handshake, made health and Describe on a *new* connection UNAVAILABLE. The kubelet's probe
opens a new connection each time; on the health port it is answered, and the runner's channel,
open before, keeps working."""

from __future__ import annotations

import itertools
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import h2.config
import h2.connection
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plugin.hosts.serve import health_listener
from plugin.hosts.serve.protocol import integration_pack_pb2 as pb
from plugin.hosts.serve.protocol import integration_pack_pb2_grpc as pb_grpc
from plugin.hosts.serve.server import MAX_CONNECTIONS, SERVICE
from tests.support import dockerfile
from tests.support.cli import run_cli
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.held_connections import HeldConnections
from tests.support.local_iam import LocalIAM
from tests.support.pki import RUNNER_DNS, client_credentials
from tests.support.ports import free_port
from tests.support.slow_senders import SlowSenders
from tests.support.stalled_streams import PeakResident, StalledStreams

HELD = MAX_CONNECTIONS + 8
FRESH = itertools.count(2)  # a channel option of its own: a new connection, not a shared one
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def bare_sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for bare in held:
        bare.close()


def health_of(target: str, service: str = "") -> Any:
    """The status a new connection to `target` is told (the kubelet's probe opens one each time)."""
    with grpc.insecure_channel(target, options=[("test.fresh", next(FRESH))]) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return answer.status


def the_runners_channel_works(channel: Any, iam: LocalIAM) -> None:
    """What the runner does on the channel it keeps: Describe and an ExecuteAction that
    creates a key."""
    stub = pb_grpc.PluginStub(channel)
    assert stub.Describe(pb.Empty(), timeout=10).name == "iam_create_access_key"
    user = iam.new_user()
    answer = stub.ExecuteAction(execute_request({"user_name": user}, iam.connection()), timeout=30)
    assert answer.error_code == 0, answer.error_message
    assert iam.key_ids(user) == [json.loads(answer.result)["AccessKey"]["AccessKeyId"]]


def hold_idle_connections(port: int, count: int, held: list[socket.socket]) -> None:
    """`count` HTTP/2 connections that say their preface and settings, then nothing (as the
    red team's stall.py with no stream)."""
    for _ in range(count):
        bare = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(bare)
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        bare.sendall(connection.data_to_send())


def test_health_is_answered_on_its_port_while_callers_hold_every_connection(
    started: list[PluginProcess],
    iam: LocalIAM,
    stalled: list[StalledStreams],
    bare_sockets: list[socket.socket],
) -> None:
    health_port = free_port()
    process = PluginProcess("--health-port", str(health_port))
    started.append(process)
    said = f"health on 127.0.0.1:{health_port} (grpc.health.v1 only, plaintext)"
    assert said in _later_lines(process)
    runner = process.channel()
    the_runners_channel_works(runner, iam)  # its connection is open before the attack
    hold_idle_connections(process.port, HELD // 2, bare_sockets)  # idle ones, and stalled ones
    stalled.append(StalledStreams(process.address, HELD // 2, connections=HELD // 2))
    time.sleep(2)
    # The lever is real: a new connection to the main port is not answered while they hold it.
    with (
        pytest.raises(grpc.RpcError) as refused,
        # an option of its own: grpc would reuse the runner's connection otherwise
        grpc.insecure_channel(process.address, options=[("test.fresh", 1)]) as fresh,
    ):
        health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert refused.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    target = f"127.0.0.1:{health_port}"
    assert health_of(target) == SERVING
    assert health_of(target, SERVICE) == SERVING
    completed = run_cli("health", "--health-port", str(health_port), env=dict(os.environ))
    assert (completed.returncode, completed.stdout) == (0, f"{target}: SERVING\n")
    the_runners_channel_works(runner, iam)
    # Readiness turns NOT_SERVING at SIGTERM on the health port too, at once.
    process.process.send_signal(15)
    deadline = time.monotonic() + 10
    while health_of(target, SERVICE) == SERVING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health_of(target, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_under_mutual_tls_bare_sockets_holding_every_connection_leave_health_answered(
    started: list[PluginProcess],
    iam: LocalIAM,
    pki: dict[str, Any],
    bare_sockets: list[socket.socket],
) -> None:
    """Under mutual TLS the health port is still plaintext (the kubelet's probe speaks no
    TLS), and bare TCP sockets that never handshake, more than the cap, do not reach it."""
    health_port = free_port()
    process = PluginProcess(
        "--tls-cert", pki["server"][3], "--tls-key", pki["server"][2],
        "--tls-client-ca", pki["ca"][3], "--tls-client-name", RUNNER_DNS,
        "--health-port", str(health_port),
    )  # fmt: skip
    started.append(process)
    runner = process.channel(client_credentials(pki, "client"), host="localhost")
    the_runners_channel_works(runner, iam)
    for _ in range(HELD):
        bare_sockets.append(socket.create_connection(("127.0.0.1", process.port), timeout=5))
    time.sleep(1)
    with (  # the lever: a new connection to the main port is not answered while they are held
        pytest.raises(grpc.RpcError) as refused,
        grpc.secure_channel(
            f"localhost:{process.port}",
            client_credentials(pki, "client"),
            options=[("test.fresh", next(FRESH))],
        ) as fresh,
    ):
        health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert refused.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    assert health_of(f"127.0.0.1:{health_port}") == SERVING
    assert health_of(f"127.0.0.1:{health_port}", SERVICE) == SERVING
    the_runners_channel_works(runner, iam)


def _later_lines(process: PluginProcess) -> str:
    """serve's lines after the ready line, once they have been read."""
    deadline = time.monotonic() + 10
    while len(process.output) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return "".join(process.output[1:])


# ---- the health socket: health no network caller can starve -----------------------------------


def socket_health(path: Path, service: str = "") -> Any:
    """The status the health socket answers, on a new connection."""
    with grpc.insecure_channel(f"unix:{path}", options=[("test.fresh", next(FRESH))]) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return answer.status


def test_health_requests_that_never_finish_cost_the_health_port_little_memory(
    started: list[PluginProcess],
) -> None:
    """The fourth red team: 64 connections x 4 streams to the health port, each sending part
    of a 5 MB Check and never its end (refused only at its end, past the 1 KiB limit), reopened
    when ended: grpc's growing windows buffered megabytes a stream, 359-363 MiB (411 MiB with
    256 connections; OOM-killed in a 256 MiB cgroup, a key left). Its window is now fixed at 4
    KiB: 84 MiB with 256 connections. Probes are still answered afterwards."""
    health_port = free_port()
    process = PluginProcess("--health-port", str(health_port))
    started.append(process)
    with PeakResident(process) as peak:
        senders = SlowSenders(
            health_port, connections=64, streams=4, seconds=10, path="/grpc.health.v1.Health/Check"
        )
        senders.join()
    assert senders.streams_allowed == 4
    assert senders.reopened > 0, "no stream was ended and reopened: the attack did not run"
    assert peak.kib < 128 * 1024, f"peak resident memory {peak.kib // 1024} MiB"
    assert health_of(f"127.0.0.1:{health_port}") == SERVING


def test_health_on_its_socket_is_serving_while_both_ports_are_starved(
    started: list[PluginProcess],
    iam: LocalIAM,
    bare_sockets: list[socket.socket],
    tmp_path: Path,
) -> None:
    """The red team's health_starve.py on the health port (connections held and reopened at
    once, more than its cap) and 33+ connections held on the main port: the health port
    refuses a new probe, the health socket (mode 0600) answers SERVING, `health
    --health-socket` says so, and after SIGTERM it says NOT_SERVING."""
    health_port, path = free_port(), tmp_path / "run" / "health.sock"
    path.parent.mkdir(mode=0o700)
    process = PluginProcess("--health-port", str(health_port), "--health-socket", str(path))
    started.append(process)
    assert f"health on unix socket {path}, mode 0600 (grpc.health.v1 only)" in _later_lines(process)
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    runner = process.channel()
    the_runners_channel_works(runner, iam)
    hold_idle_connections(process.port, HELD, bare_sockets)
    starving = HeldConnections(health_port, health_listener.CONNECTIONS + 16)
    try:
        time.sleep(3)
        # The lever is real: a new probe on the health port is refused while they hold it.
        with pytest.raises(grpc.RpcError) as refused:
            health_of(f"127.0.0.1:{health_port}")
        assert refused.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        for _ in range(3):  # probes again and again, as the kubelet's
            assert socket_health(path) == SERVING
            assert socket_health(path, SERVICE) == SERVING
            completed = run_cli("health", "--health-socket", str(path), env=dict(os.environ))
            assert (completed.returncode, completed.stdout) == (0, f"unix:{path}: SERVING\n")
            time.sleep(1)
        the_runners_channel_works(runner, iam)
    finally:
        starving.release()
    process.process.send_signal(15)
    deadline = time.monotonic() + 10
    while socket_health(path) == SERVING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert socket_health(path) == health_pb2.HealthCheckResponse.NOT_SERVING
    completed = run_cli("health", "--health-socket", str(path), env=dict(os.environ))
    assert (completed.returncode, completed.stdout) == (1, f"unix:{path}: NOT_SERVING\n")


def test_the_probe_reads_where_health_is_and_nothing_serve_settles_from_its_arguments(
    started: list[PluginProcess], tmp_path: Path
) -> None:
    """Found by the Kubernetes review: an exec probe runs with the container's environment but
    not serve's arguments. Variables that serve's `args:` settle (MAX_CALL_SECONDS=90 beside
    `--grace 120`) made `health` refuse them, exit 2, and liveness restart the pod for ever."""
    path = tmp_path / "health.sock"
    environment = {
        "IAM_CREATE_ACCESS_KEY_MAX_CALL_SECONDS": "90",
        "IAM_CREATE_ACCESS_KEY_HEALTH_SOCKET": str(path),
    }
    process = PluginProcess("--grace", "120", env=environment)
    started.append(process)
    assert socket_health(path) == SERVING
    completed = run_cli("health", env={**os.environ, **environment})
    assert (completed.returncode, completed.stdout) == (0, f"unix:{path}: SERVING\n")


def test_a_socket_a_killed_server_left_is_replaced_and_anything_else_refused(
    started: list[PluginProcess], tmp_path: Path
) -> None:
    """The emptyDir that holds the socket outlives a container the kubelet restarts (after
    SIGKILL, the OOM killer, a failed liveness probe): the socket left there, which nobody
    listens on, must not keep the next server from starting. A file that is no socket, or a
    socket someone listens on, is never replaced."""
    path = tmp_path / "health.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(path))
    left.close()  # as a killed process leaves it: the file, and nobody listening
    process = PluginProcess("--health-socket", str(path))
    started.append(process)
    assert socket_health(path) == SERVING
    second = run_cli("serve", "--port", "0", "--health-socket", str(path), env=dict(os.environ))
    assert second.returncode == 2
    assert f"--health-socket {path} already exists; remove it first" in second.stderr
    assert socket_health(path) == SERVING  # the live one is left alone
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    third = run_cli("serve", "--port", "0", "--health-socket", str(regular), env=dict(os.environ))
    assert third.returncode == 2
    assert regular.read_text() == "keep me"


def test_in_the_image_a_flag_after_the_entrypoint_moves_the_health_port_not_its_variable(
    started: list[PluginProcess],
) -> None:
    """The image passes --health-port on its ENTRYPOINT (a variable could be replaced by a
    Service's link and silently read as unset): a flag wins over its variable, so there
    IAM_CREATE_ACCESS_KEY_HEALTH_PORT moves nothing (README: the settings table), and
    `args: [--health-port, N]`, appended after the ENTRYPOINT, does (the last flag wins)."""
    entrypoint = dockerfile.exec_form("ENTRYPOINT")
    assert entrypoint[:2] == ["iam-create-access-key", "serve"]
    images, variables, moved = free_port(), free_port(), free_port()
    at = entrypoint.index("--health-port") + 1
    arguments = [*entrypoint[2:at], str(images), *entrypoint[at + 1 :]]
    process = PluginProcess(
        *arguments,
        "--health-port",
        str(moved),
        env={"IAM_CREATE_ACCESS_KEY_HEALTH_PORT": str(variables)},
    )
    started.append(process)
    assert health_of(f"127.0.0.1:{moved}") == SERVING
    deadline = time.monotonic() + 10
    while "health on" not in process.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"health on 127.0.0.1:{moved} (grpc.health.v1 only, plaintext)" in process.text()
    for unused in (images, variables):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused), timeout=2).close()
