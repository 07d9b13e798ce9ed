"""The plugin protocol's generated modules, and the `run` path that must not pay for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.local_iam import LocalIAM

PROTOCOL = Path("plugin/serve/protocol")
GENERATED = ("integration_pack_pb2.py", "integration_pack_pb2_grpc.py")


def test_the_checked_in_modules_equal_a_fresh_generation(tmp_path: Path) -> None:
    """`make proto` writes them; nobody edits them."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(PROTOCOL / "integration_pack.proto"),
        ],
        cwd=ROOT,
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / PROTOCOL / name).read_text(encoding="utf-8")
        checked_in = (ROOT / PROTOCOL / name).read_text(encoding="utf-8")
        assert fresh == checked_in, f"{name} is stale or edited: run make proto"


def test_the_proto_keeps_the_sdks_service_and_field_numbers() -> None:
    from plugin.serve.protocol import integration_pack_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["Plugin"]
    assert service.full_name == "integration_pack.Plugin"
    assert [method.name for method in service.methods] == [
        "HealthProbe",
        "Describe",
        "GetActions",
        "ExecuteAction",
        "TestCredentials",
    ]
    numbers = {field.name: field.number for field in pb.ExecuteActionRequest.DESCRIPTOR.fields}
    assert numbers == {"name": 1, "parameters": 2, "context": 3, "connections": 4, "timeout": 5}
    numbers = {field.name: field.number for field in pb.ExecuteActionResponse.DESCRIPTOR.fields}
    assert numbers == {
        "error_code": 1,
        "result": 2,
        "rows": 3,
        "context": 4,
        "log_buffer": 5,
        "error_message": 6,
    }
    assert pb.ConnectionInstance.DESCRIPTOR.fields_by_name["data"].number == 6
    assert pb.HealthStatus.DESCRIPTOR.fields_by_name["last_use"].number == 1


def test_the_run_path_never_imports_grpc(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()
    probe = (
        "import sys\n"
        "from plugin.cli import main\n"
        f"status = main(['run', '--user-name', '{user}'])\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'google', 'grpc_health'})\n"
        "print(status, loaded, file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env=cli_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.stderr.strip().splitlines()[-1] == "0 []"
