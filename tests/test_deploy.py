"""The container recipe and the Kubernetes manifests: linted and validated offline, and in
agreement with each other and with `serve` (port, probes, grace, environment, user)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from plugin.hosts.operator import settings
from plugin.hosts.serve.server import EXIT_LISTING_SECONDS, EXIT_MARGIN_SECONDS
from tests.support import dockerfile
from tests.support.paths import ROOT
from tests.support.service_links import SERVICE_LINKS

MANIFESTS = ROOT / "deploy" / "kubernetes"
# The optional overlay for a Prometheus run by the Prometheus Operator: the base plus a PodMonitor.
OPERATOR_OVERLAY = ROOT / "deploy" / "prometheus-operator"
KUBERNETES_VERSION = "1.30.0"
RUNNER_ACTION_TIMEOUT = 60  # blink-runner-deploy's config.yml: runner.action_timeout
# serve's --shutdown-delay default (the issue-20 branch adds the flag; 5 s until it lands)
SHUTDOWN_DELAY = getattr(settings, "DEFAULT_SHUTDOWN_DELAY_SECONDS", 5.0)
METRICS_PORT = 9464


def manifest(name: str, folder: Path = MANIFESTS) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((folder / name).read_text())
    return document


def container() -> dict[str, Any]:
    (only,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def pod_environment() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


def serve_settings() -> dict[str, Any]:
    """What `serve` in the pod runs with: the image's variables, then the pod's."""
    return settings.resolve({}, {**dockerfile.environment(), **pod_environment()})


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


def health_port() -> int:
    """The image's --health-port (a flag: a variable could be a Service's link)."""
    entrypoint = dockerfile.exec_form("ENTRYPOINT")
    return int(entrypoint[entrypoint.index("--health-port") + 1])


def test_the_port_is_one_everywhere() -> None:
    port, _, _ = container()["ports"]
    (service_port,) = manifest("service.yaml")["spec"]["ports"]
    rule, _ = manifest("networkpolicy.yaml")["spec"]["ingress"]
    assert dockerfile.one("EXPOSE").split()[0] == str(settings.DEFAULT_PORT) == "1337"
    # the default, never a variable a Service's link could replace
    assert "IAM_CREATE_ACCESS_KEY_PORT" not in dockerfile.environment()
    assert "IAM_CREATE_ACCESS_KEY_PORT" not in pod_environment()
    assert serve_settings()["port"] == 1337
    with_links = {**SERVICE_LINKS, **dockerfile.environment()}
    assert settings.resolve({}, with_links)["port"] == 1337  # a pod the runner starts
    assert port["containerPort"] == service_port["port"] == rule["ports"][0]["port"] == 1337
    assert service_port["targetPort"] == port["name"]


def health_socket() -> Path:
    """The health socket serve opens in the pod (the image's variable, which the pod keeps)."""
    path = serve_settings()["health_socket"]
    assert isinstance(path, Path)
    return path


def test_the_probes_ask_the_health_socket_no_network_caller_can_fill() -> None:
    """The kubelet's probes and the image's HEALTHCHECK run `health` on the health socket
    (mode 0600), which callers holding connections on a port cannot starve; its folder is a
    volume, writable under the read-only root."""
    probe = ["iam-create-access-key", "health", "--health-socket", str(health_socket())]
    assert dockerfile.exec_form("HEALTHCHECK") == probe
    for name in ("readinessProbe", "livenessProbe"):
        check = container()[name]
        assert check["exec"]["command"] == probe, name
        assert "grpc" not in check
        assert "tcpSocket" not in check
        # longer than `health`'s own wait (3 s), so its one line is what the kubelet records
        assert check["timeoutSeconds"] > 3
    (mount,) = container()["volumeMounts"]
    assert Path(mount["mountPath"]) == health_socket().parent
    spec = manifest("deployment.yaml")["spec"]["template"]["spec"]
    (volume,) = spec["volumes"]
    assert volume["name"] == mount["name"]
    assert "emptyDir" in volume
    assert dockerfile.one("VOLUME") == f'["{health_socket().parent}"]'
    assert any(
        f"install -d -o 10001 -g 0 -m 0770 {health_socket().parent}" in command
        for command in dockerfile.commands(dockerfile.runtime_stage())
    )


def test_the_health_port_stays_for_grpc_probes_and_no_pod_reaches_it() -> None:
    """--health-port (1338) is still opened, for operators who prefer the kubelet's gRPC
    probes; neither the Service nor the NetworkPolicy opens it to pods."""
    _, _, declared = container()["ports"]
    assert declared == {"name": "health", "containerPort": health_port(), "protocol": "TCP"}
    assert health_port() != settings.DEFAULT_PORT
    assert str(health_port()) in dockerfile.one("EXPOSE").split()
    (service_port,) = manifest("service.yaml")["spec"]["ports"]
    assert service_port["port"] != health_port()
    for rule in manifest("networkpolicy.yaml")["spec"]["ingress"]:
        assert all(entry["port"] != health_port() for entry in rule["ports"])


def test_the_grace_covers_the_runners_timeout_and_the_pod_outlives_the_drain() -> None:
    grace = float(pod_environment()["IAM_CREATE_ACCESS_KEY_GRACE"])
    assert float(dockerfile.environment()["IAM_CREATE_ACCESS_KEY_GRACE"]) == grace
    assert grace >= RUNNER_ACTION_TIMEOUT
    pod = serve_settings()
    assert pod["max_call_seconds"] <= pod["grace"] == grace  # no call outlives it
    image = settings.resolve({}, dockerfile.environment())
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
    # a cordoned or tainted node (a drain taints it unschedulable) is not counted: it can
    # neither hold the replacement pod back nor receive it
    assert by_key["kubernetes.io/hostname"]["nodeTaintsPolicy"] == "Honor"
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
    pod = serve_settings()
    assert pod["metrics_port"] == METRICS_PORT
    assert pod["metrics_host"] == "0.0.0.0"  # noqa: S104 (the pod network, policed below)
    _, declared, _ = container()["ports"]
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
        assert name in {s.variable for s in settings.SETTINGS}, name
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
    assert dockerfile.exec_form("ENTRYPOINT") == [
        "iam-create-access-key", "serve", "--health-port", str(health_port()),
    ]  # fmt: skip


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


def test_node_taints_policy_is_a_field_the_schema_knows() -> None:
    """Strict validation refuses a field the Kubernetes 1.30 schema does not have, so the
    Deployment's passing (above) shows nodeTaintsPolicy is one: a misspelt one is refused."""
    import kubernetes_validate

    deployment = manifest("deployment.yaml")
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    spread["nodeTaintPolicy"] = spread.pop("nodeTaintsPolicy")
    with pytest.raises(kubernetes_validate.ValidationError, match="nodeTaintPolicy"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# The Prometheus Operator labels the pods it runs for a Prometheus and for a PrometheusAgent
# (prometheus-operator's pkg/prometheus/server/statefulset.go podSelectorLabels and its
# agent's ListOptions); both read PodMonitors. Kubernetes labels every namespace with its name.
OPERATOR_PROMETHEUS = {
    "app.kubernetes.io/name": "prometheus",
    "app.kubernetes.io/managed-by": "prometheus-operator",
    "app.kubernetes.io/instance": "k8s",
    "prometheus": "k8s",
    "operator.prometheus.io/name": "k8s",
    "operator.prometheus.io/shard": "0",
}
OPERATOR_AGENT = {
    "app.kubernetes.io/name": "prometheus-agent",
    "app.kubernetes.io/managed-by": "prometheus-operator",
    "app.kubernetes.io/instance": "agent",
    "operator.prometheus.io/name": "agent",
}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
PLUGIN_NAMESPACE = {"kubernetes.io/metadata.name": "blink"}  # the runner's, and ours
RUNNER = {"app": "blink-runner", "release": "blink-runner"}

# The PodMonitor fields the overlay relies on, as monitoring.coreos.com/v1's CRD types them
# (prometheus-operator example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml,
# operator 0.91.0: spec.selector required, an endpoint's port a container port's name, scheme
# an enum, interval a Prometheus duration). No other field is allowed here, so one that is
# added must be added to this shape, read from the CRD, too.
_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
PODMONITOR_SHAPE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "labels": _LABELS},
        },
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "additionalProperties": False,
                    "properties": {"matchLabels": _LABELS},
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": _DURATION},
                        },
                    },
                },
            },
        },
    },
}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) selects labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        held = {
            "In": key in labels and labels[key] in (values or []),
            "NotIn": key not in labels or labels[key] not in (values or []),
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


def admitted(namespace: dict[str, str], pod: dict[str, str], port: int) -> bool:
    """Whether the NetworkPolicy lets a pod of that namespace reach the plugin on that port
    (a peer with both selectors: the pod must match both, as Kubernetes ANDs them)."""
    for rule in manifest("networkpolicy.yaml")["spec"]["ingress"]:
        if not any(entry["port"] == port for entry in rule["ports"]):
            continue
        for peer in rule["from"]:
            # a peer without a namespaceSelector is the policy's own namespace
            if "namespaceSelector" in peer:
                in_namespace = selects(peer["namespaceSelector"], namespace)
            else:
                in_namespace = namespace == PLUGIN_NAMESPACE
            if in_namespace and selects(peer.get("podSelector", {}), pod):
                return True
    return False


def test_the_prometheus_operator_overlay_is_the_base_and_a_podmonitor_only() -> None:
    overlay = manifest("kustomization.yaml", OPERATOR_OVERLAY)
    assert overlay["resources"] == ["../kubernetes", "podmonitor.yaml"]
    assert (OPERATOR_OVERLAY / "../kubernetes").resolve() == MANIFESTS
    present = {path.name for path in OPERATOR_OVERLAY.iterdir()}
    assert present == {"kustomization.yaml", "podmonitor.yaml"}
    # never in the base: without the Operator's CRDs, `kubectl apply -k` of it would fail
    assert "podmonitor.yaml" not in manifest("kustomization.yaml")["resources"]
    assert not (MANIFESTS / "podmonitor.yaml").exists()


def test_the_podmonitor_has_the_crds_shape_and_scrapes_the_metrics_port() -> None:
    import jsonschema

    monitor = manifest("podmonitor.yaml", OPERATOR_OVERLAY)
    jsonschema.validate(monitor, PODMONITOR_SHAPE)
    pod_labels = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert selects(monitor["spec"]["selector"], pod_labels)
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports[endpoint["port"]] == serve_settings()["metrics_port"] == METRICS_PORT
    annotations = manifest("deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
    assert endpoint["path"] == annotations["prometheus.io/path"] == "/metrics"
    assert endpoint["scheme"] == "http"  # serve's metrics port speaks no TLS


def test_the_network_policy_admits_the_podmonitors_prometheus_to_metrics_only() -> None:
    for prometheus in (OPERATOR_PROMETHEUS, OPERATOR_AGENT):
        assert admitted(MONITORING, prometheus, METRICS_PORT), prometheus
        assert not admitted(MONITORING, prometheus, settings.DEFAULT_PORT)
        assert not admitted({"kubernetes.io/metadata.name": "default"}, prometheus, METRICS_PORT)
    assert admitted(PLUGIN_NAMESPACE, RUNNER, settings.DEFAULT_PORT)
    assert not admitted(PLUGIN_NAMESPACE, RUNNER, METRICS_PORT)
    assert not admitted(MONITORING, {"app.kubernetes.io/name": "grafana"}, METRICS_PORT)


def test_the_overlay_builds_with_kustomize() -> None:
    """kustomize refuses an overlay inside its own base (a cycle): this one is beside it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(OPERATOR_OVERLAY)], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    kinds = [document["kind"] for document in yaml.safe_load_all(built.stdout)]
    assert sorted(kinds) == sorted(
        [manifest(name)["kind"] for name in manifest("kustomization.yaml")["resources"]]
        + ["PodMonitor"]
    )
