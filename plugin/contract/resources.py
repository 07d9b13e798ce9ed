"""Locate and load the manifest and JSON Schemas shipped with the plugin (each read once)."""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # plugin/, this module is in plugin/contract/


def resource_path(relative: str) -> Path:
    """Find a shipped file: inside the installed package (wheel), else at the checkout's top."""
    for base in (_PACKAGE_DIR, _PACKAGE_DIR.parent):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{relative} is not shipped with the plugin")


def _read(relative: str) -> str:
    """A shipped file's text: from the files, or from inside a zip the package is imported
    from (the Shuffle app vendors the package as one: plugin/hosts/shuffle/folder.py)."""
    with contextlib.suppress(FileNotFoundError):
        return resource_path(relative).read_text(encoding="utf-8")
    inside = importlib.resources.files("plugin").joinpath(relative)
    return inside.read_text(encoding="utf-8")


@functools.cache
def manifest() -> dict[str, Any]:
    """The parsed action.yaml."""
    import yaml  # the run path reads the manifest once; keep yaml off the import path otherwise

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: dict[str, Any] = yaml.load(_read("action.yaml"), Loader=loader)  # noqa: S506 (safe)
    return data


def schema_path(kind: str) -> str:
    """Where the schema of a kind lives: the manifest names these paths (a test checks it)."""
    return f"schemas/{kind}.schema.json"


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """One JSON Schema by kind: "input", "output" or "connection"."""
    data: dict[str, Any] = json.loads(_read(schema_path(kind)))
    return data
