"""Locate and load the manifest and JSON Schemas shipped with the plugin (each read once)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(relative: str) -> Path:
    """Find a shipped file: inside the installed package (wheel), else at the checkout's top."""
    for base in (_PACKAGE_DIR, _PACKAGE_DIR.parent):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{relative} is not shipped with the plugin")


@functools.cache
def manifest() -> dict[str, Any]:
    """The parsed action.yaml."""
    import yaml  # the run path reads the manifest once; keep yaml off the import path otherwise

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with resource_path("action.yaml").open(encoding="utf-8") as stream:
        data: dict[str, Any] = yaml.load(stream, Loader=loader)  # noqa: S506 (a safe loader)
    return data


def schema_path(kind: str) -> str:
    """Where the schema of a kind lives: the manifest names these paths (a test checks it)."""
    return f"schemas/{kind}.schema.json"


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """One JSON Schema by kind: "input", "output" or "connection"."""
    with resource_path(schema_path(kind)).open(encoding="utf-8") as stream:
        data: dict[str, Any] = json.load(stream)
    return data
