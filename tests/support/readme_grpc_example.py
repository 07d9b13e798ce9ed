"""The README's gRPC example, as one script: its blocks taken from the README as written."""

from __future__ import annotations

import re

from tests.support.paths import ROOT


def example() -> tuple[str, str, str]:
    """The README's gRPC example: its shell block, its Python block, its stopping block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Run it under a Blink runner\n", 1)[1].split("\n### ", 1)[0]
    after = section.split("the example below runs as written", 1)[1]
    blocks = re.findall(r"```(sh|python)\n(.*?)```", after, re.DOTALL)
    assert [kind for kind, _ in blocks[:3]] == ["sh", "python", "sh"], blocks
    (_, shell), (_, python), (_, stop) = blocks[:3]
    return shell, python, stop


def example_script(stop: bool = True, change: tuple[str, str] | None = None) -> str:
    """The example as one script, README ports as written: the Python block fed to python."""
    shell, python, stopping = example()
    if change is not None:
        assert change[0] in python
        python = python.replace(change[0], change[1])
    script = shell + ".venv/bin/python - <<'PYTHON'\n" + python + "PYTHON\n"
    return script + stopping if stop else script
