"""The variables the kubelet injects for a namespace's Services, as the tests' pods get them."""

from __future__ import annotations


def kubelet_service_links(service: str, ip: str, ports: dict[str, int]) -> dict[str, str]:
    """The variables the kubelet injects into every pod of a namespace for one Service
    (enableServiceLinks, on by default): pkg/kubelet/envvars/envvars.go's FromServices."""
    name = service.upper().replace("-", "_")
    first = next(iter(ports.values()))
    links = {
        f"{name}_SERVICE_HOST": ip,
        f"{name}_SERVICE_PORT": str(first),
        f"{name}_PORT": f"tcp://{ip}:{first}",
    }
    for port_name, port in ports.items():
        prefix = f"{name}_PORT_{port}_TCP"
        links[f"{name}_SERVICE_PORT_{port_name.upper().replace('-', '_')}"] = str(port)
        links[prefix] = f"tcp://{ip}:{port}"
        links[f"{prefix}_PROTO"] = "tcp"
        links[f"{prefix}_PORT"] = str(port)
        links[f"{prefix}_ADDR"] = ip
    return links


SERVICE_LINKS = {
    **kubelet_service_links("iam-create-access-key", "10.96.14.7", {"grpc": 1337, "metrics": 9464}),
    **kubelet_service_links("iam-create-access-key-metrics", "10.96.14.8", {"http": 9464}),
    **kubelet_service_links("iam-create-access-key-unix", "10.96.14.9", {"x": 80}),
    **kubelet_service_links("blink-runner", "10.96.3.2", {"http": 8080}),
}
