"""Check a document against one of the plugin's JSON Schemas, reporting every bad field by path.

Messages name the field and the rule, never the value: a value can be a secret.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
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
    # The schemas are checked against their meta-schema by the test suite, not on every start.
    from jsonschema import validators

    base = validators.validator_for(resources.schema(kind))
    extended = validators.extend(base, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
    return extended(resources.schema(kind))


def problems(kind: str, document: Any, where: str) -> list[str]:
    """Every way `document` breaks schema `kind`, one message each, named from `where`.

    jsonschema is the validator of record. Importing it and building its validator costs more
    than a whole CreateAccessKey call in a fresh process, so a document is first read by
    `surely_valid`, a small reader of the same schema; only what it cannot vouch for goes to
    jsonschema, which then has the last word and writes the messages.
    """
    if surely_valid(resources.schema(kind), document):
        return []
    found = [_describe(error, where) for error in _validator(kind).iter_errors(document)]
    return sorted(set(found))


# The keywords `surely_valid` reads; a schema with any other keyword goes to jsonschema.
_READ = frozenset(
    {
        "$schema", "$id", "title", "description", "default", "examples", "writeOnly", "secret",
        "format",  # an annotation only: jsonschema asserts no format here either
        "x-pattern-means",  # ours, an annotation: what a pattern asks for, in words
        "type", "properties", "additionalProperties", "required", "dependentRequired",
        "pattern", "minLength", "maxLength", "enum", "minimum", "maximum", "anyOf",
    }
)  # fmt: skip
_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def surely_valid(schema: Mapping[str, Any], document: Any) -> bool:
    """True only if `document` meets `schema` for certain; False means "ask jsonschema".

    It never says True where jsonschema says invalid (tests/test_validation.py checks that on
    generated documents); it may say False where jsonschema says valid (1.0 as an integer).
    """
    return _reader(schema)(document)


Check = Callable[[Any], bool]
# Readers by schema identity; the schema is kept beside its reader so that the id stays its own.
_readers: dict[int, tuple[Mapping[str, Any], Check]] = {}


def _reader(schema: Mapping[str, Any]) -> Check:
    known = _readers.get(id(schema))
    if known is None or known[0] is not schema:
        known = (schema, _build_reader(schema))
        _readers[id(schema)] = known
    return known[1]


def _build_reader(schema: Mapping[str, Any]) -> Check:
    """Turn a schema into one function of nested checks (reading it per call is slower)."""
    if not _READ.issuperset(schema):
        return lambda document: False
    checks: list[Check] = []
    expected = schema.get("type")
    if expected is not None:
        if not isinstance(expected, str):
            return lambda document: False
        checks.append(_TYPES[expected])
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    pattern = _compiled(schema["pattern"]) if "pattern" in schema else None
    if low or high is not None or pattern is not None:
        checks.append(
            lambda v: (
                not isinstance(v, str)
                or (
                    len(v) >= low
                    and (high is None or len(v) <= high)
                    and (pattern is None or pattern.search(v) is not None)
                )
            )
        )
    if "enum" in schema:
        choices = list(schema["enum"])
        checks.append(lambda v: any(type(c) is type(v) and c == v for c in choices))
    if "minimum" in schema or "maximum" in schema:
        least, most = schema.get("minimum"), schema.get("maximum")
        checks.append(
            lambda v: (
                not isinstance(v, (int, float))
                or isinstance(v, bool)
                or ((least is None or v >= least) and (most is None or v <= most))
            )
        )
    if {"properties", "additionalProperties", "required", "dependentRequired"} & set(schema):
        checks.append(_object_reader(schema))
    if "anyOf" in schema:
        branches = [_reader(branch) for branch in schema["anyOf"]]
        checks.append(lambda v: any(branch(v) for branch in branches))
    if len(checks) == 1:
        return checks[0]

    def read_all(document: Any) -> bool:
        for check in checks:  # noqa: SIM110 (all() over a generator costs twice as much)
            if not check(document):
                return False
        return True

    return read_all


def _object_reader(schema: Mapping[str, Any]) -> Check:
    required = tuple(schema.get("required", ()))
    dependent = tuple(
        (name, tuple(needed)) for name, needed in schema.get("dependentRequired", {}).items()
    )
    readers = {name: _reader(rules) for name, rules in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_reader: Check | None = None
    if isinstance(extra, Mapping):
        extra_reader = _reader(extra)
    elif extra is False:
        extra_reader = lambda value: False  # noqa: E731

    def read(document: Any) -> bool:
        if not isinstance(document, dict):
            return True
        if any(name not in document for name in required):
            return False
        for name, needed in dependent:
            if name in document and any(other not in document for other in needed):
                return False
        for name, value in document.items():
            reader = readers.get(name) if isinstance(name, str) else None
            if reader is None:
                if not isinstance(name, str) or (
                    extra_reader is not None and not extra_reader(value)
                ):
                    return False
            elif not reader(value):
                return False
        return True

    return read


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


def _did_you_mean(unknown: list[str], known: Mapping[str, Any]) -> str:
    """ "; did you mean user_name?" for names close to a known one (case, _ and spaces aside)."""

    def squashed(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())

    by_squashed = {squashed(name): name for name in known}
    guesses = []
    for name in unknown:
        if len(name) > 64:  # no field's name is that long
            continue
        close = difflib.get_close_matches(squashed(name), list(by_squashed), n=1, cutoff=0.75)
        if close:
            guesses.append((field_name(name), by_squashed[close[0]]))
    if not guesses:
        return ""
    if len(unknown) == 1:
        return f"; did you mean {guesses[0][1]}?"
    return "; did you mean " + ", ".join(f"{guess} for {name}" for name, guess in guesses) + "?"


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
        return (
            f"{names}: unknown field{_did_you_mean(unknown[:5], known)} (known fields: {allowed})"
        )
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a field"
        return f"{path}.{missing}: is required"
    if keyword == "dependentRequired":
        # jsonschema says "'needed' is a dependency of 'given'": one error per missing field.
        needed, given = re.findall(r"'([^']*)'", error.message)[:2]
        return f"{path}.{given}: needs {path}.{needed} as well"
    messages: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be {_TYPE_NAMES.get(str(rule), str(rule))}",
        # A pattern that says what it means in words is worded so (a person reads the
        # message); else the pattern itself.
        "pattern": lambda: (
            f"must be {error.schema['x-pattern-means']}"
            if "x-pattern-means" in error.schema
            else f"must match the pattern {rule}"
        ),
        "minLength": lambda: "must not be empty" if rule == 1 else f"must be at least {rule} long",
        "maxLength": lambda: f"must be at most {rule} characters long",
        "enum": lambda: "must be one of " + ", ".join(str(choice) for choice in rule),
        "minimum": lambda: f"must be at least {rule}",
        "maximum": lambda: f"must be at most {rule}",
        "anyOf": lambda: "must have one of the shapes the schema allows",
    }
    describe = messages.get(str(keyword))
    return f"{path}: {describe() if describe else f'is not valid ({keyword})'}"
