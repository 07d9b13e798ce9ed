"""The layout a reader relies on: imports run one way between the wings of plugin/ (the map and
the rule are plugin/__init__.py's docstring), lazy imports stay lazy, and tests import support
modules, never one another."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugin"
# hosts -> engine -> invocation -> delivery -> aws -> runtime -> contract: a module may import
# its own wing and any wing to its right.
ORDER = ("hosts", "engine", "invocation", "delivery", "aws", "runtime", "contract")
# The doors inside hosts, and which of them each may reach: what doors share is operator/, and
# only the command line hosts others (its `serve`, `health` and `demo` commands). operator/
# reaches no door.
DOORS = ("cli", "demo", "serve", "shuffle", "operator")
MAY_REACH = {
    "cli": {"cli", "demo", "serve", "operator"},
    "demo": {"demo", "operator"},
    "serve": {"serve", "operator"},
    "shuffle": {"shuffle", "operator"},
    "operator": {"operator"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _wing(module: str) -> str:
    """plugin.<wing>...; the package itself (its lazy execute) and plugin.engine are the engine;
    `python -m plugin` (plugin.__main__) is a host."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ORDER:
        return parts[1]
    return "hosts" if parts[1:2] == ["__main__"] else "engine"


def _door(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "hosts" and parts[2] in DOORS else None


def _dynamic_import(node: ast.AST) -> str | None:
    """The module a call imports by name (importlib.import_module("..."), __import__("...")),
    if it is given as a literal; "?" for one given otherwise (it cannot be judged, so it is
    named)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    if name not in ("import_module", "__import__"):
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else "?"


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, module imported) for every import of plugin code in the file, wherever it is
    (module level, inside functions, under TYPE_CHECKING)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        named = _dynamic_import(node)
        if named is not None:
            yield node.lineno, named if named != "?" else "plugin.? (a module named at run time)"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                # `from plugin.x import y` may name a module y: judge by the deeper name
                yield node.lineno, f"{target}.{alias.name}"


def _plugin_modules() -> list[Path]:
    return sorted(p for p in PLUGIN.rglob("*.py") if "__pycache__" not in p.parts)


def backward_imports() -> list[str]:
    """Every import in plugin/ that runs against the rule, as `module:line imports target`."""
    return [entry for path in _plugin_modules() for entry in _judged(path, _module_name(path))]


def _judged(path: Path, module: str) -> list[str]:
    """The imports of one file (as the module `module`) that run against the rule."""
    found = []
    wing, door = _wing(module), _door(module)
    for line, target in _imports(path, module):
        if target != "plugin" and not target.startswith("plugin."):
            continue
        to_wing, to_door = _wing(target), _door(target)
        if target.startswith("plugin.?"):
            found.append(f"{module}:{line} imports {target}")
        elif ORDER.index(to_wing) < ORDER.index(wing):
            found.append(f"{module}:{line} imports {target} ({wing} -> {to_wing})")
        elif door and to_door and to_door not in MAY_REACH[door]:
            found.append(f"{module}:{line} imports {target} (door {door} -> door {to_door})")
    return found


def test_every_module_is_in_a_wing() -> None:
    """Beside the package's own three files, every module lives in a wing's folder (a module
    added where the old flat layout had it is named here)."""
    top = {"__init__.py", "__main__.py", "engine.py", "py.typed"}
    stray = [
        str(path.relative_to(ROOT))
        for path in _plugin_modules()
        if (path.parent == PLUGIN and path.name not in top)
        or (path.parent != PLUGIN and path.relative_to(PLUGIN).parts[0] not in ORDER)
    ]
    assert stray == []


def test_imports_run_one_way() -> None:
    found = backward_imports()
    assert not found, "imports that run back:\n" + "\n".join(found)


def test_the_rule_sees_an_import_that_runs_back(tmp_path: Path) -> None:
    """The check itself: a contract module that imports the runtime inside a function is named."""
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from plugin.runtime import redaction\n", encoding="utf-8")
    found = [
        f"plugin.contract.probe:{line} imports {target}"
        for line, target in _imports(module, "plugin.contract.probe")
        if ORDER.index(_wing(target)) < ORDER.index("contract")
    ]
    assert found == ["plugin.contract.probe:2 imports plugin.runtime.redaction"]


@pytest.mark.parametrize(
    ("module", "source", "named"),
    [
        ("plugin.contract.probe", "import importlib\nimportlib.import_module('plugin.hosts.cli')",
         "plugin.hosts.cli (contract -> hosts)"),
        ("plugin.contract.probe", "__import__('plugin.invocation.run')",
         "plugin.invocation.run (contract -> invocation)"),
        ("plugin.aws.probe", "import importlib\nname = 'plugin.engine'\nimportlib.import_module(name)",
         "plugin.? (a module named at run time)"),
        ("plugin.hosts.shuffle.probe", "from plugin.hosts import cli",
         "plugin.hosts.cli (door shuffle -> door cli)"),
        ("plugin.hosts.operator.probe", "from plugin.hosts import demo",
         "plugin.hosts.demo (door operator -> door demo)"),
        ("plugin.hosts.serve.probe", "from plugin.hosts.shuffle import app",
         "plugin.hosts.shuffle.app (door serve -> door shuffle)"),
    ],
    ids=["import_module", "__import__", "computed-name", "shuffle-to-cli", "operator-to-demo",
         "serve-to-shuffle"],
)  # fmt: skip
def test_the_rule_sees_doors_and_imports_by_name(
    tmp_path: Path, module: str, source: str, named: str
) -> None:
    """Found by the newcomer review: importlib and __import__ passed the check, and so did a
    door reaching another door than serve <-> shuffle."""
    probe = tmp_path / "probe.py"
    probe.write_text(source + "\n", encoding="utf-8")
    assert [entry.split(" imports ", 1)[1] for entry in _judged(probe, module)] == [named]


def test_every_wing_has_an_index_and_imports_nothing() -> None:
    """Each package's __init__ is its index (a docstring naming each module) and loads nothing."""
    for init in sorted(PLUGIN.rglob("__init__.py")):
        if init.parent == PLUGIN:
            continue  # the package itself: its lazy execute/test_connection
        tree = ast.parse(init.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree) or ""
        assert docstring, f"{init.relative_to(ROOT)} has no index"
        body = tree.body[1:]
        assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body), init
        if init.parent.name == "protocol":
            continue  # generated modules, named as a group
        for module in sorted(init.parent.glob("*.py")):
            if module.name != "__init__.py":
                assert module.stem in docstring, f"{init.relative_to(ROOT)} misses {module.stem}"


def test_the_map_names_every_wing() -> None:
    docstring = ast.get_docstring(ast.parse((PLUGIN / "__init__.py").read_text())) or ""
    for wing in ORDER:
        assert wing in docstring


@pytest.mark.parametrize("module", ["plugin", "plugin.hosts.cli"])
def test_importing_loads_no_aws_library(module: str) -> None:
    """The command line starts its clock and switches off the collector before botocore loads:
    importing the package or the command line must not load it (nor boto3, nor grpc)."""
    probe = (
        f"import sys, {module}\n"
        "heavy = {'botocore', 'boto3', 'grpc', 'jsonschema', 'yaml'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"


def test_no_test_module_imports_another() -> None:
    """What tests share lives in tests/support/: a test module imports none of its siblings,
    nor conftest (its fixtures reach tests by name; a helper is imported from support)."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for line, target in _imports(path, _module_name(path)):
            parts = target.split(".")  # `from tests import test_x` is tests.test_x too
            if parts[0] == "tests" and parts[1:2] and parts[1].startswith(("test_", "conftest")):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not found, "test modules imported by others:\n" + "\n".join(found)
