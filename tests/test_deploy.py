"""The container recipe and the Kubernetes manifests: linted and validated offline, and in
agreement with each other and with `serve` (port, probes, grace, environment, user)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from plugin.serve import defaults
from plugin.serve.server import EXIT_LISTING_SECONDS, EXIT_MARGIN_SECONDS, SERVICE
from tests import dockerfile
from tests.conftest import ROOT
from tests.test_serve_settings import SERVICE_LINKS

MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
RUNNER_ACTION_TIMEOUT = 60  # blink-runner-deploy's config.yml: runner.action_timeout
# serve's --shutdown-delay default (the issue-20 branch adds the flag; 5 s until it lands)
SHUTDOWN_DELAY = getattr(defaults, "DEFAULT_SHUTDOWN_DELAY_SECONDS", 5.0)
METRICS_PORT = 9464


def manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / name).read_text())
    return document


def container() -> dict[str, Any]:
    (only,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def pod_environment() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


def serve_settings() -> dict[str, Any]:
    """What `serve` in the pod runs with: the image's variables, then the pod's."""
    return defaults.resolve({}, {**dockerfile.environment(), **pod_environment()})


pytestmark = pytest.mark.slow


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    completed = subprocess.run(
        [str(hadolint), str(dockerfile.PATH)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize(
    "name",
    [
        "deployment.yaml",
        "service.yaml",
        "networkpolicy.yaml",
        "serviceaccount.yaml",
        "poddisruptionbudget.yaml",
    ],
)
def test_each_manifest_is_valid_against_the_kubernetes_schemas(name: str) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(manifest(name), KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(manifest("kustomization.yaml")["resources"])
    present = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_port_is_one_everywhere() -> None:
    port, _ = container()["ports"]
    (service_port,) = manifest("service.yaml")["spec"]["ports"]
    rule, _ = manifest("networkpolicy.yaml")["spec"]["ingress"]
    assert dockerfile.one("EXPOSE") == str(defaults.DEFAULT_PORT) == "1337"
    # the default, never a variable a Service's link could replace
    assert "IAM_CREATE_ACCESS_KEY_PORT" not in dockerfile.environment()
    assert "IAM_CREATE_ACCESS_KEY_PORT" not in pod_environment()
    assert serve_settings()["port"] == 1337
    with_links = {**SERVICE_LINKS, **dockerfile.environment()}
    assert defaults.resolve({}, with_links)["port"] == 1337  # a pod the runner starts
    assert port["containerPort"] == service_port["port"] == rule["ports"][0]["port"] == 1337
    assert service_port["targetPort"] == port["name"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container()[probe]["grpc"]["port"] == 1337


def test_the_probes_ask_the_services_serve_answers_for() -> None:
    assert container()["readinessProbe"]["grpc"]["service"] == SERVICE
    assert container()["livenessProbe"]["grpc"].get("service", "") == ""
    assert dockerfile.exec_form("HEALTHCHECK") == ["iam-create-access-key", "health"]


def test_the_grace_covers_the_runners_timeout_and_the_pod_outlives_the_drain() -> None:
    grace = float(pod_environment()["IAM_CREATE_ACCESS_KEY_GRACE"])
    assert float(dockerfile.environment()["IAM_CREATE_ACCESS_KEY_GRACE"]) == grace
    assert grace >= RUNNER_ACTION_TIMEOUT
    settings = serve_settings()
    assert settings["max_call_seconds"] <= settings["grace"] == grace  # no call outlives it
    image = defaults.resolve({}, dockerfile.environment())
    assert image["max_call_seconds"] <= image["grace"]  # a pod the runner starts, too
    spec = manifest("deployment.yaml")["spec"]["template"]["spec"]
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    assert pause >= 5
    stop = pause + SHUTDOWN_DELAY + grace + EXIT_MARGIN_SECONDS + EXIT_LISTING_SECONDS
    assert spec["terminationGracePeriodSeconds"] > stop
    liveness = container()["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > stop  # never mid-drain
    assert dockerfile.one("STOPSIGNAL") == "SIGTERM"


def test_a_node_drain_or_a_rollout_leaves_one_pod_serving() -> None:
    deployment = manifest("deployment.yaml")["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    assert deployment["replicas"] >= 2
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = manifest("poddisruptionbudget.yaml")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    spreads = deployment["template"]["spec"]["topologySpreadConstraints"]
    by_key = {spread["topologyKey"]: spread for spread in spreads}
    assert by_key["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "topology.kubernetes.io/zone" in by_key
    for spread in spreads:
        assert spread["labelSelector"]["matchLabels"].items() <= labels.items()


def test_no_service_link_reaches_the_pod_and_max_calls_is_pinned() -> None:
    spec = manifest("deployment.yaml")["spec"]["template"]["spec"]
    assert spec["enableServiceLinks"] is False
    assert serve_settings()["max_calls"] == int(
        pod_environment()["IAM_CREATE_ACCESS_KEY_MAX_CALLS"]
    )


def test_metrics_are_on_a_declared_port_open_to_prometheus_only() -> None:
    settings = serve_settings()
    assert settings["metrics_port"] == METRICS_PORT
    assert settings["metrics_host"] == "0.0.0.0"  # noqa: S104 (the pod network, policed below)
    _, declared = container()["ports"]
    assert (declared["name"], declared["containerPort"]) == ("metrics", METRICS_PORT)
    annotations = manifest("deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }
    _, rule = manifest("networkpolicy.yaml")["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


def test_the_image_comes_from_a_registry_path_kustomize_sets() -> None:
    (entry,) = manifest("kustomization.yaml")["images"]
    assert container()["image"] == entry["name"] == "iam-create-access-key"
    registry, _, path = entry["newName"].partition("/")
    assert "." in registry  # a host, never Docker Hub's library by default
    assert path
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert entry["newTag"] == version.group(1)


def test_the_image_and_the_pod_agree_and_are_hardened() -> None:
    env = pod_environment()
    image_env = dockerfile.environment()
    for name, value in env.items():
        assert name in {s.variable for s in defaults.SETTINGS}, name
        if name in image_env:
            assert image_env[name] == value, name
    user = dockerfile.one("USER")
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}" == "10001:10001"
    assert any(
        re.search(r"useradd --uid 10001\b", command)
        for command in dockerfile.commands(dockerfile.runtime_stage())
    )
    hardened = container()["securityContext"]
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"]["drop"] == ["ALL"]
    assert pod["runAsNonRoot"] is True
    assert container()["resources"]["limits"]["memory"]
    assert dockerfile.exec_form("ENTRYPOINT") == ["iam-create-access-key", "serve"]


def test_the_network_policy_admits_only_the_runner() -> None:
    policy = manifest("networkpolicy.yaml")["spec"]
    pod_labels = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    rule, _ = policy["ingress"]
    (source,) = rule["from"]
    assert source == {
        "podSelector": {"matchLabels": {"app": "blink-runner", "release": "blink-runner"}}
    }
    selector = manifest("service.yaml")["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
