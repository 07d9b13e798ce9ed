"""The manifest as an engine or a form reads it: action.yaml joined with the schemas' rules."""

from __future__ import annotations

import copy
import json
from typing import Any

from . import resources
from .secret_fields import secret_field_names


def parameters() -> list[dict[str, Any]]:
    """Each parameter with its form fields (action.yaml) and its rules (input schema), in order."""
    rules = resources.schema("input")
    required = set(rules.get("required", []))
    described = []
    for order, entry in enumerate(resources.manifest()["parameters"], start=1):
        name = entry["name"]
        described.append(
            {
                **entry,
                "order": order,
                "required": name in required,
                **copy.deepcopy(rules["properties"][name]),
            }
        )
    return described


def describe() -> dict[str, Any]:
    """The whole manifest, with parameters resolved and the secret output fields named."""
    document = copy.deepcopy(resources.manifest())
    document["parameters"] = parameters()
    output_schema = resources.schema("output")
    document["output"]["secret_fields"] = [
        f"AccessKey.{name}" for name in secret_field_names([output_schema])
    ]
    document["schemas"] = {kind: resources.schema(kind) for kind in ("input", "output")}
    document["connection"]["schema"] = resources.schema("connection")
    return document


def parameters_table() -> str:
    """The README's parameters table (Markdown rows), derived from the manifest and schemas."""
    rows = []
    for parameter in parameters():
        rules = []
        if "enum" in parameter:
            rules.append("one of " + ", ".join(f"`{choice}`" for choice in parameter["enum"]))
        if "pattern" in parameter:
            rules.append(f"pattern `{parameter['pattern']}`")
        if "minLength" in parameter and "maxLength" in parameter:
            rules.append(f"{parameter['minLength']} to {parameter['maxLength']} characters")
        elif "maxLength" in parameter:
            rules.append(f"at most {parameter['maxLength']} characters")
        if "minimum" in parameter and "maximum" in parameter:
            rules.append(f"{parameter['minimum']} to {parameter['maximum']}")
        default = f"`{json.dumps(parameter['default'])}`" if "default" in parameter else "(none)"
        cells = [
            f"`{parameter['name']}`",
            parameter["display_name"],
            parameter["group"],
            parameter["type"],
            default,
            "; ".join(rules) or "",
            parameter["description"].replace("|", "\\|"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
