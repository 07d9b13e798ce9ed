"""`iam-create-access-key health`: ask a running `serve` whether it is SERVING, as a container's
HEALTHCHECK does (grpc.health.v1.Health/Check, the whole server's status)."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plugin.hosts.operator.settings import DEFAULT_HOST, ServeSettings

# The settings a check reads: where the server answers health. Only these: an exec probe runs
# with the container's environment, while serve may also take arguments (`args:`) that settle
# what its variables alone would refuse (MAX_CALL_SECONDS=90 beside `--grace 120`); a probe
# that read those would fail forever and have the pod restarted in a loop.
WHERE = ("host", "port", "unix", "health_port", "health_socket")


def check(settings: ServeSettings, timeout: float) -> tuple[bool, str]:
    """(serving, one line saying so) for the server the settings describe: on its health
    socket when it has one (no network caller can fill it), else on its health port (answered
    whatever callers hold on the main port; serve binds it on --host, or on 127.0.0.1 with
    --unix), else at host:port or on the Unix socket."""
    host, port, unix = settings.host, settings.port, settings.unix
    if settings.health_socket is not None:
        unix = settings.health_socket
    elif settings.health_port is not None:
        host, port, unix = (DEFAULT_HOST if unix else host), settings.health_port, None
    target = f"unix:{unix}" if unix else (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError as error:
            return False, f"{target}: not serving ({error.code().name})"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"
