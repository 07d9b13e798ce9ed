"""Check a document against one of the plugin's JSON Schemas, reporting every bad field by path.

Messages name the field and the rule, never the value: a value can be a secret.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from . import resources


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    """JSON Schema's `pattern`, with ECMA-262 meaning rather than Python's.

    JSON Schema patterns are ECMA-262 regular expressions: there `\\w` is ASCII and `$` ends the
    input. Python's `re` lets `\\w` match any Unicode letter and `$` match before a final newline,
    so "bob\\n" or "bób" would pass `^[\\w+=,.@-]+$` and be sent to IAM, which rejects them.
    """
    from jsonschema.exceptions import ValidationError

    if isinstance(instance, str) and not _compiled(pattern).search(instance):
        yield ValidationError(f"does not match {pattern}")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern, re.ASCII)


@functools.cache
def _validator(kind: str) -> Any:
    from jsonschema import validators

    base = validators.validator_for(resources.schema(kind))
    base.check_schema(resources.schema(kind))
    extended = validators.extend(base, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
    return extended(resources.schema(kind))


def problems(kind: str, document: Any, where: str) -> list[str]:
    """Every way `document` breaks schema `kind`, one message each, named from `where`."""
    found = [_describe(error, where) for error in _validator(kind).iter_errors(document)]
    return sorted(set(found))


def field_name(name: Any) -> str:
    """A field name as a message shows it: plain when it looks like one, else escaped and cut.

    An unknown field's name comes from the request and can be anything: a megabyte, control
    characters, a pasted secret.
    """
    text = str(name)
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        return text
    shown = repr(text[:24])
    return shown + ("…" if len(text) > 24 else "")


def _path(where: str, parts: Any) -> str:
    text = where
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{field_name(part)}"
    return text


_TYPE_NAMES = {
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "integer": "a whole number",
    "number": "a number",
    "array": "a list",
}


def _describe(error: Any, where: str) -> str:
    """One line for one schema violation: the field's path and the rule, not the value."""
    path = _path(where, error.absolute_path)
    keyword = error.validator
    rule = error.validator_value
    if keyword == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted(str(name) for name in error.instance if name not in known)
        names = ", ".join(f"{path}.{field_name(name)}" for name in unknown[:5])
        if len(unknown) > 5:
            names += f" and {len(unknown) - 5} more"
        allowed = ", ".join(known)
        return f"{names}: unknown field (known fields: {allowed})"
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a field"
        return f"{path}.{missing}: is required"
    if keyword == "dependentRequired":
        # jsonschema says "'needed' is a dependency of 'given'": one error per missing field.
        needed, given = re.findall(r"'([^']*)'", error.message)[:2]
        return f"{path}.{given}: needs {path}.{needed} as well"
    messages = {
        "type": lambda: f"must be {_TYPE_NAMES.get(str(rule), str(rule))}",
        "pattern": lambda: f"must match the pattern {rule}",
        "minLength": lambda: "must not be empty" if rule == 1 else f"must be at least {rule} long",
        "maxLength": lambda: f"must be at most {rule} characters long",
        "enum": lambda: "must be one of " + ", ".join(str(choice) for choice in rule),
        "minimum": lambda: f"must be at least {rule}",
        "maximum": lambda: f"must be at most {rule}",
    }
    describe = messages.get(str(keyword))
    return f"{path}: {describe() if describe else f'is not valid ({keyword})'}"
