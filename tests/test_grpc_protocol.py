"""The plugin protocol's generated modules, and the `run` path that must not pay for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.local_iam import LocalIAM
from tests.support.paths import ROOT

PROTOCOL = Path("plugin/hosts/serve/protocol")
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


def _our_interface() -> list[str]:
    """integration_pack.proto as the fixture spells the SDK's: one line a method or field."""
    from google.protobuf.descriptor import FieldDescriptor

    from plugin.hosts.serve.protocol import integration_pack_pb2 as pb

    scalar = {
        value: name.removeprefix("TYPE_").lower()
        for name, value in vars(FieldDescriptor).items()
        if name.startswith("TYPE_")
    }
    lines = [
        f"service {service.name} {method.name} {method.input_type.name} {method.output_type.name}"
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]
    for message in pb.DESCRIPTOR.message_types_by_name.values():
        for field in message.fields:
            named = field.message_type or field.enum_type
            label = "repeated" if field.label == FieldDescriptor.LABEL_REPEATED else "optional"
            lines.append(
                f"{message.name} {field.name} {field.number} "
                f"{named.name if named else scalar[field.type]} {label}"
            )
    return lines


def test_the_proto_is_the_sdks_interface_message_by_message_field_by_field() -> None:
    """Every method, message, field name, number, type and label of the SDK's current interface
    (tests/fixtures/blink_sdk_interface.txt), and nothing else: a missing field cannot hide."""
    fixture = ROOT / "tests" / "fixtures" / "blink_sdk_interface.txt"
    sdk = [line for line in fixture.read_text().splitlines() if line and line[0] != "#"]
    ours = _our_interface()
    assert sorted(set(sdk) - set(ours)) == [], "in the SDK, not here"
    assert sorted(set(ours) - set(sdk)) == [], "here, not in the SDK"
    assert len(ours) == len(sdk) == 68


def test_the_run_path_never_imports_grpc(iam: LocalIAM, cli_env: dict[str, str]) -> None:
    user = iam.new_user()
    probe = (
        "import sys\n"
        "from plugin.hosts.cli import main\n"
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
