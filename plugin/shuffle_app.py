"""The action as a Shuffle app: its api.yaml, generated from the manifest and schemas, and the
one function its app.py calls (Shuffle's SDK itself is imported only by that app.py).

Shuffle hands an app's function every action parameter and every authentication field as a
string, as its forms hold them; they are read here exactly as every other door reads them
(engine.execute: "true"/"false", "" as not given, numbers). Shuffle's SDK gives each call
SHUFFLE_APP_SDK_TIMEOUT seconds (30 unless set), reports a failure when they run out, and lets
the call run on: so the action's own deadline is always shorter, and it answers in time or
deletes what it made.

A Shuffle app runs on a worker with whatever AWS identity that machine has, for anyone who can
build a workflow: so it lends that identity, and reaches a connection's endpoint_url, only as
`serve` does (its policy), with the same variables set on the worker
(IAM_CREATE_ACCESS_KEY_LEND_IDENTITY, ..._ALLOW_ROLE_ARN, ..._ALLOW_ENDPOINT, ..._VAULT_PREFIX).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from . import engine, manifest, resources
from .serve.defaults import resolve
from .serve.policy import Policy

SDK_TIMEOUT_VARIABLE = "SHUFFLE_APP_SDK_TIMEOUT"
SDK_DEFAULT_TIMEOUT = 30.0
# Kept back from the SDK's time: the SDK's own work before and after the call.
SDK_MARGIN_SECONDS = 3.0
ACTION = "create_access_key"


def action_deadline(environ: Mapping[str, str]) -> float:
    """The action's time: always below what the SDK gives a call."""
    try:
        sdk = float(environ.get(SDK_TIMEOUT_VARIABLE, "") or SDK_DEFAULT_TIMEOUT)
    except ValueError:
        sdk = SDK_DEFAULT_TIMEOUT  # the SDK falls back to its default too
    return max(0.5, sdk - SDK_MARGIN_SECONDS) if sdk > 2 * SDK_MARGIN_SECONDS else sdk / 2


def policy(environ: Mapping[str, str]) -> Policy:
    """Whose identity and which endpoints, as the worker's environment says (serve's rules)."""
    return Policy.from_settings(resolve({}, environ))


def create_access_key(fields: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """One Shuffle call: {"success": true, ...result} or {"success": false, "reason", "error_code"}.
    Never raises (the SDK answers a raised TypeError by calling again with an argument fewer)."""
    try:
        admit = policy(environ).admit
    except ValueError as error:  # the worker's own settings are wrong: say which
        return {"success": False, "reason": str(error), "error_code": 2}
    try:
        connection_names = set(resources.schema("connection")["properties"])
        request = {
            "parameters": {k: v for k, v in fields.items() if k not in connection_names},
            "connection": {k: v for k, v in fields.items() if k in connection_names},
            "timeout": action_deadline(environ),
        }
        response = engine.execute(request, admit)
    except Exception as error:  # a bug: said in one line, never raised into the SDK
        return {"success": False, "reason": f"internal error ({type(error).__name__})",
                "error_code": 1}  # fmt: skip
    if response["error_code"]:
        return {
            "success": False,
            "reason": response["error_message"],
            "error_code": response["error_code"],
        }
    result = response["result"]
    if isinstance(result, str):  # Disable XML To JSON Auto Convert: IAM's XML as it was sent
        return {"success": True, "raw_xml": result}
    return {"success": True, **result}


def api_document() -> dict[str, Any]:
    """Shuffle's api.yaml for the action, from action.yaml and schemas/."""
    document = resources.manifest()
    connection = resources.schema("connection")
    required = set(connection.get("required", []))
    return {
        "app_version": str(document["version"]),
        "name": document["name"].replace("_", "-"),
        "description": document["description"],
        "contact_info": {"name": "iam-create-access-key", "url": "https://shuffler.io"},
        "tags": ["AWS", "IAM", "Access keys"],
        "categories": ["IAM"],
        "authentication": {
            "required": False,  # no field: the app's own AWS identity (its environment)
            "parameters": [
                _authentication_field(name, rules, name in required)
                for name, rules in connection["properties"].items()
            ],
        },
        "actions": [
            {
                "name": ACTION,
                "description": f"{document['display_name']}: {document['description']}",
                "parameters": [_parameter(entry) for entry in manifest.parameters()],
                "returns": {"example": _returns_example(document), "schema": {"type": "string"}},
            }
        ],
    }


def _authentication_field(name: str, rules: Mapping[str, Any], required: bool) -> dict[str, Any]:
    secret = bool(rules.get("secret") or rules.get("writeOnly"))
    examples = rules.get("examples", [])
    field: dict[str, Any] = {
        "name": name,
        "description": f"{rules.get('title', name)}. {rules.get('description', '')}".strip(),
        "example": "*****" if secret else (str(examples[0]) if examples else ""),
        "required": required,
        "schema": {"type": "string"},
    }
    if secret:
        field["schema"]["format"] = "password"  # shown masked, stored as a secret
    return field


def _parameter(entry: Mapping[str, Any]) -> dict[str, Any]:
    examples = entry.get("examples", [])
    example = examples[0] if examples else entry.get("default", "")
    parameter: dict[str, Any] = {
        "name": entry["name"],
        "description": f"{entry['display_name']}: {entry['description']}",
        "required": bool(entry["required"]),
        "multiline": False,
        "example": _as_text(example),
        "schema": {"type": "string"},
    }
    if entry.get("type") == "boolean":
        parameter["options"] = ["false", "true"]
    elif "enum" in entry:
        parameter["options"] = [str(choice) for choice in entry["enum"]]
    return parameter


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _returns_example(document: Mapping[str, Any]) -> str:
    import json

    return json.dumps({"success": True, **document["output"]["example"]}, indent=2)


def render() -> str:
    """api.yaml's text, as checked in (regenerate: make shuffle-app)."""
    header = (
        "# Generated from action.yaml and schemas/ by `make shuffle-app`"
        " (python -m plugin.shuffle_app); never edited.\n"
    )
    return header + yaml.safe_dump(api_document(), sort_keys=False, width=100)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
