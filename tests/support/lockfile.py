"""The container image's hash-locked requirements (requirements/*.txt, made by `make lock`):
which of pyproject.toml's requirements each is made from, and the stamp that says so, so that
a test can tell a lock made from an older pyproject.toml. `python -m tests.support.lockfile` stamps."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]  # the checkout: this is tests/support/lockfile.py
FOLDER = ROOT / "requirements"
# lock file -> the tables of pyproject.toml it is made from
SOURCES = {
    "serve.txt": ("project.dependencies", "project.optional-dependencies.serve"),
    "build.txt": ("build-system.requires",),
}
STAMP = re.compile(r"^# made from pyproject\.toml's .*: sha256 [0-9a-f]{64}\n", re.MULTILINE)
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", re.MULTILINE)


def requirements(lock: str) -> list[str]:
    """The requirement strings of pyproject.toml the lock is made from (the serve extra's
    self-reference left out: the image installs the action's own wheel with --no-deps)."""
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: list[str] = []
    for table in SOURCES[lock]:
        node = document
        for key in table.split("."):
            node = node[key]
        found.extend(str(item) for item in node)
    return [item for item in found if not item.startswith("iam-create-access-key")]


def stamp_line(lock: str) -> str:
    text = "\n".join(sorted(requirements(lock)))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"# made from pyproject.toml's {' + '.join(SOURCES[lock])}: sha256 {digest}\n"


def pins(lock: str) -> dict[str, str]:
    """name (normalised) -> the version the lock pins."""
    text = (FOLDER / lock).read_text()
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in PIN.findall(text)}


def stamp() -> None:
    """Write each lock's stamp on its first line (after `make lock`'s pip-compile)."""
    for lock in SOURCES:
        path = FOLDER / lock
        path.write_text(stamp_line(lock) + STAMP.sub("", path.read_text()))


if __name__ == "__main__":
    stamp()
    sys.exit(0)
