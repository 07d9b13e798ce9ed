"""A request's map entries counted on the wire, before protobuf parses (and multiplies) them.

A message of many tiny map entries parses to some 17 times its size (the red team's 556,632-byte
TestCredentials of 33,000 connections: 9.5 MiB each, 305 MB for 16 callers), and translation's
caps refuse it only once it is parsed. So the entries are counted here, over the raw bytes
(https://protobuf.dev/programming-guides/encoding/: a map is a repeated entry message of key 1
and value 2), and a request over translation's caps is refused with translation's own words,
unparsed. Field numbers are integration_pack.proto's. A scan is one step per entry, no copy:
microseconds for a runner's request (see the README, "Tenants and load").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from plugin.contract.errors import ActionError

from . import translation

# ExecuteActionRequest: name 1, parameters 2, context 3, connections 4, timeout 5.
EXECUTE_PARAMETERS, EXECUTE_CONTEXT, EXECUTE_CONNECTIONS, EXECUTE_TIMEOUT = 2, 3, 4, 5
CREDENTIALS_CONNECTIONS = 1  # TestCredentialsRequest: connections 1
ENTRY_VALUE = 2  # a map entry: key 1, value 2
CONNECTION_DATA = 6  # ConnectionInstance: name 2, id 4, data 6
# Top-level fields besides the counted maps (name, context, timeout, unknown ones): a real
# request has three; thousands of them only make the scan (and the parse) long.
MAX_OTHER_FIELDS = 64
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class Unreadable(ValueError):
    """Bytes that are no protobuf message this scanner reads (groups, truncation, bad tags)."""


@dataclasses.dataclass(frozen=True)
class Scan:
    """What a request's bytes say before parsing: a refusal (or None), and what the event loop
    needs without a parse (the call's timeout, where the context to echo lies)."""

    refusal: ActionError | None
    timeout: int = 0
    context: tuple[int, int] = (0, 0)  # the context's bytes: raw[start:end]


def execute_request(raw: bytes) -> Scan:
    """An ExecuteActionRequest's parameters, connections and their fields, counted."""
    view = memoryview(raw)
    parameters = connections = others = timeout = 0
    context = (0, 0)
    crowded: ActionError | None = None  # the first connection with too many fields
    for number, kind, start, end in _fields(view, 0, len(view)):
        if number == EXECUTE_PARAMETERS and kind == LENGTH:
            parameters += 1
        elif number == EXECUTE_CONNECTIONS and kind == LENGTH:
            connections, crowded = _one_more_connection(view, start, end, connections, crowded)
        else:
            others = _other(others)
            if number == EXECUTE_CONTEXT and kind == LENGTH:
                context = (start, end)
            elif number == EXECUTE_TIMEOUT and kind == VARINT:
                timeout = _int32(end)
    # In translation's order: parameters, then connections, then one connection's fields.
    refusal = crowded
    if connections > translation.MAX_CONNECTIONS:
        refusal = translation.too_many_connections(connections)
    if parameters > translation.MAX_PARAMETER_ENTRIES:
        refusal = translation.too_many_parameters(parameters)
    return Scan(refusal, timeout, context)


def credentials_request(raw: bytes) -> Scan:
    """A TestCredentialsRequest's connections and their fields, counted."""
    view = memoryview(raw)
    connections = others = 0
    crowded: ActionError | None = None
    for number, kind, start, end in _fields(view, 0, len(view)):
        if number == CREDENTIALS_CONNECTIONS and kind == LENGTH:
            connections, crowded = _one_more_connection(view, start, end, connections, crowded)
        else:
            others = _other(others)
    if connections > translation.MAX_CONNECTIONS:
        return Scan(translation.too_many_connections(connections))
    return Scan(crowded)


def _other(count: int) -> int:
    """One more top-level field outside the counted maps; past MAX_OTHER_FIELDS, unreadable."""
    if count >= MAX_OTHER_FIELDS:
        raise Unreadable(f"more than {MAX_OTHER_FIELDS} other fields")
    return count + 1


def _one_more_connection(
    view: memoryview, start: int, end: int, connections: int, crowded: ActionError | None
) -> tuple[int, ActionError | None]:
    """A connections map entry seen: the count, and the first crowded connection's refusal
    (only the first MAX_CONNECTIONS are looked into: past them, the count refuses)."""
    connections += 1
    if connections <= translation.MAX_CONNECTIONS and crowded is None:
        crowded = _connection(view, start, end)
    return connections, crowded


def _connection(view: memoryview, start: int, end: int) -> ActionError | None:
    """A connections map entry: its value's `data` entries, counted (a value may come in
    several pieces, which protobuf merges)."""
    fields = 0
    for number, kind, value_start, value_end in _fields(view, start, end):
        if number != ENTRY_VALUE or kind != LENGTH:
            continue
        for inner, inner_kind, _, _ in _fields(view, value_start, value_end):
            if inner == CONNECTION_DATA and inner_kind == LENGTH:
                fields += 1
    if fields > translation.MAX_CONNECTION_FIELDS:
        return translation.too_many_fields(fields)
    return None


def _fields(view: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Each field between start and end: its number, wire type, and for a length-delimited one
    where its bytes lie (for a varint, its value twice)."""
    at = start
    while at < end:
        tag, at = _varint(view, at, end)
        number, kind = tag >> 3, tag & 7
        if number == 0:
            raise Unreadable("field number 0")
        if kind == VARINT:
            value, at = _varint(view, at, end)
            yield number, kind, value, value
        elif kind == LENGTH:
            length, at = _varint(view, at, end)
            if length > end - at:
                raise Unreadable("a field runs past its message")
            yield number, kind, at, at + length
            at += length
        elif kind in (FIXED64, FIXED32):
            at += 8 if kind == FIXED64 else 4
            if at > end:
                raise Unreadable("a field runs past its message")
            yield number, kind, at, at
        else:  # groups (3, 4) are in no message of this protocol; 6 and 7 are in none at all
            raise Unreadable(f"wire type {kind}")


def _varint(view: memoryview, at: int, end: int) -> tuple[int, int]:
    """A base-128 varint at `at`: its value and where the next byte is."""
    value = shift = 0
    while at < end and shift < 70:
        byte = view[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
    raise Unreadable("a varint runs past its message")


def _int32(value: int) -> int:
    """A varint as protobuf's int32 reads it (negative ones are sent as 64-bit)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value
