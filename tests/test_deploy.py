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

MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
RUNNER_ACTION_TIMEOUT = 60  # blink-runner-deploy's config.yml: runner.action_timeout


def manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / name).read_text())
    return document


def container() -> dict[str, Any]:
    (only,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


pytestmark = pytest.mark.slow


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    completed = subprocess.run(
        [str(hadolint), str(dockerfile.PATH)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize(
    "name", ["deployment.yaml", "service.yaml", "networkpolicy.yaml", "serviceaccount.yaml"]
)
def test_each_manifest_is_valid_against_the_kubernetes_schemas(name: str) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(manifest(name), KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(manifest("kustomization.yaml")["resources"])
    present = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_port_is_one_everywhere() -> None:
    env = {item["name"]: item["value"] for item in container()["env"]}
    (port,) = container()["ports"]
    (service_port,) = manifest("service.yaml")["spec"]["ports"]
    (rule,) = manifest("networkpolicy.yaml")["spec"]["ingress"]
    assert dockerfile.one("EXPOSE") == str(defaults.DEFAULT_PORT) == "1337"
    assert dockerfile.environment()["IAM_CREATE_ACCESS_KEY_PORT"] == "1337"
    assert env["IAM_CREATE_ACCESS_KEY_PORT"] == "1337"
    assert port["containerPort"] == service_port["port"] == rule["ports"][0]["port"] == 1337
    assert service_port["targetPort"] == port["name"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container()[probe]["grpc"]["port"] == 1337


def test_the_probes_ask_the_services_serve_answers_for() -> None:
    assert container()["readinessProbe"]["grpc"]["service"] == SERVICE
    assert container()["livenessProbe"]["grpc"].get("service", "") == ""
    assert dockerfile.exec_form("HEALTHCHECK") == ["iam-create-access-key", "health"]


def test_the_grace_covers_the_runners_timeout_and_the_pod_outlives_the_drain() -> None:
    env = {item["name"]: item["value"] for item in container()["env"]}
    grace = float(env["IAM_CREATE_ACCESS_KEY_GRACE"])
    assert float(dockerfile.environment()["IAM_CREATE_ACCESS_KEY_GRACE"]) == grace
    assert grace >= RUNNER_ACTION_TIMEOUT
    spec = manifest("deployment.yaml")["spec"]["template"]["spec"]
    delay = float(
        env.get("IAM_CREATE_ACCESS_KEY_SHUTDOWN_DELAY", defaults.DEFAULT_SHUTDOWN_DELAY_SECONDS)
    )  # after SIGTERM, calls still arriving are served this long before the grace
    drain = delay + grace + EXIT_MARGIN_SECONDS + EXIT_LISTING_SECONDS
    assert spec["terminationGracePeriodSeconds"] > drain
    liveness = container()["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain  # never mid-drain
    assert dockerfile.one("STOPSIGNAL") == "SIGTERM"


def test_the_image_and_the_pod_agree_and_are_hardened() -> None:
    env = {item["name"]: item["value"] for item in container()["env"]}
    image_env = dockerfile.environment()
    for name, value in env.items():
        assert name in {s.variable for s in defaults.SETTINGS}, name
        if name in image_env:
            assert image_env[name] == value, name
    user = dockerfile.one("USER")
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}" == "10001:10001"
    assert re.search(r"useradd --uid 10001\b", dockerfile.one("RUN"))
    hardened = container()["securityContext"]
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"]["drop"] == ["ALL"]
    assert pod["runAsNonRoot"] is True
    assert container()["resources"]["limits"]["memory"]
    assert dockerfile.exec_form("ENTRYPOINT") == ["iam-create-access-key", "serve"]
    bases = [a for k, a in dockerfile.instructions() if k == "FROM"]
    assert all(re.match(r"python:\d+\.\d+\.\d+-slim-\w+", base) for base in bases)


def test_the_network_policy_admits_only_the_runner() -> None:
    policy = manifest("networkpolicy.yaml")["spec"]
    pod_labels = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert source == {
        "podSelector": {"matchLabels": {"app": "blink-runner", "release": "blink-runner"}}
    }
    selector = manifest("service.yaml")["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
