"""Which fields the schemas mark secret (`secret`, `writeOnly`), with the other spellings of the
connection's secrets: what the manifest shows as secret and what the log redactor masks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_SECRET_MARKS = ("secret", "writeOnly")
# Other spellings of the connection's secrets, as they appear in botocore's logs: its own
# argument names, the X-Amz-Security-Token header, and STS's AssumeRole answer.
_ALIASES = {
    "secret_access_key": ("aws_secret_access_key", "SecretAccessKey"),
    "session_token": ("aws_session_token", "x-amz-security-token", "SessionToken"),
}


def secret_field_names(schemas: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every property name that some schema marks as secret."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for name, rules in node.get("properties", {}).items():
                if isinstance(rules, Mapping) and any(rules.get(m) for m in _SECRET_MARKS):
                    names.add(name)
                    names.update(_ALIASES.get(name, ()))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for schema in schemas:
        walk(schema)
    return tuple(sorted(names))
