"""Blink's plugin protocol to the engine's request and back: translation only, no action logic.

The runner's messages (integration_pack.proto) carry every parameter as a string, keyed by its
name or by the display name a form shows, or as one JSON object in `parameters_as_json`; the
connection as strings under `connections["aws"].data`. They become the same request mapping
`execute` reads; the engine's response becomes an ExecuteActionResponse. The description of the
action is built from the manifest and schemas (manifest.parameters), never from a list here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plugin.contract import json_input, manifest, resources
from plugin.contract.errors import ActionError, Category

if TYPE_CHECKING:
    from plugin.engine import Response

PARAMETERS_AS_JSON = "parameters_as_json"
PROVIDER = "aws"

MAX_MESSAGE_BYTES = 5 * 1024 * 1024  # as the Blink plugin SDK's server, both ways
# An answer must also fit what a gRPC client receives unless it says otherwise (4 MiB, in Go
# and Python alike): an answer the runner refuses is a key delivered to nobody.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_LOG_BYTES = 64 * 1024
MAX_ERROR_BYTES = 16 * 1024
# What an answer may carry besides the caller's context: the result (a key, a check's report or
# IAM's XML: a few KiB), the step's log and the error, with room to spare.
ANSWER_RESERVE_BYTES = MAX_LOG_BYTES + MAX_ERROR_BYTES + 64 * 1024
MAX_CONTEXT_BYTES = MAX_ANSWER_BYTES - ANSWER_RESERVE_BYTES
# Sized before anything is parsed: far more entries than the manifest has parameters, or a
# JSON document far larger than any form could fill, is refused at once (code 2).
MAX_PARAMETER_ENTRIES = 64
MAX_PARAMETER_BYTES = 64 * 1024
MAX_CONNECTIONS = 8
MAX_CONNECTION_BYTES = 64 * 1024
# Entries of one connection's `data` (the aws connection has a handful): empty keys and values
# cost no characters, so the byte cap alone does not bound them (nor what parsing them takes).
MAX_CONNECTION_FIELDS = 64


def connection_type() -> str:
    """The connection type the manifest names (`aws`)."""
    return str(resources.manifest()["connection"]["type"])


def plugin_description(pb: Any) -> Any:
    """PluginDescription: the plugin, its one action, and the connection type it takes."""
    document = resources.manifest()
    return pb.PluginDescription(
        name=document["name"],
        description=document["description"],
        tags=["aws", "iam"],
        provider=PROVIDER,
        actions=[action_message(pb)],
        connections={connection_type(): connection_message(pb)},
        version=str(document["version"]),
        is_connection_optional=True,  # no connection: the runner's own AWS identity
    )


def action_message(pb: Any) -> Any:
    """The action as a form draws it: every parameter a FormField, in manifest order."""
    document = resources.manifest()
    return pb.Action(
        name=document["name"],
        display_name=document["display_name"],
        description=document["description"],
        active=True,
        parameters=[
            pb.ActionParameter(field=_form_field(pb, parameter, parameter["order"]))
            for parameter in manifest.parameters()
        ],
        output=pb.Output(table="AccessKey", fields=_output_fields(pb)),
        connections={connection_type(): connection_message(pb)},
        is_connection_optional="true",
    )


def connection_message(pb: Any) -> Any:
    """The `aws` connection type: one FormField per connection-schema field."""
    schema = resources.schema("connection")
    required = set(schema.get("required", []))
    fields = {}
    for index, (name, rules) in enumerate(schema["properties"].items(), start=1):
        described = {"name": name, "required": name in required, **rules}
        fields[name] = pb.ConnectionField(field=_form_field(pb, described, index))
    return pb.Connection(name=connection_type(), fields=fields)


def _form_field(pb: Any, parameter: Mapping[str, Any], index: int) -> Any:
    kind = parameter.get("type", "string")
    options = [str(choice) for choice in parameter.get("enum", [])]
    if kind == "boolean":
        input_type = "checkbox"
    elif options:
        input_type = "dropdown"
    elif parameter.get("secret") or parameter.get("writeOnly"):
        input_type = "password"
    elif kind == "integer":
        input_type = "number"
    else:
        input_type = "text"
    default = parameter.get("default")
    examples = parameter.get("examples", [])
    return pb.FormField(
        name=parameter["name"],
        # an action parameter's from the manifest; a connection field's from its schema title
        display_name=parameter.get("display_name") or parameter.get("title", ""),
        type=kind,
        input_type=input_type,
        required=bool(parameter.get("required")),
        description=parameter.get("description", ""),
        placeholder=_as_text(examples[0]) if examples else "",
        default="" if default is None else _as_text(default),
        pattern=parameter.get("pattern", ""),
        options=options,
        index=index,
        format=parameter.get("format", ""),
        is_multi=False,  # every field holds one value (AWS Region(s) is one comma list)
    )


def _as_text(value: Any) -> str:
    """A default as a form holds it: booleans as "true"/"false", like every value sent back."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _output_fields(pb: Any) -> list[Any]:
    """Each field a result may carry, AccessKey's as AccessKey.<name>, from the output schema."""
    properties = resources.schema("output")["properties"]
    fields = []
    for name, rules in properties.items():
        if name == "AccessKey":
            fields += [
                pb.Field(name=f"AccessKey.{inner}", type=inner_rules.get("type", "string"))
                for inner, inner_rules in rules["properties"].items()
            ]
        else:
            fields.append(pb.Field(name=name, type=rules.get("type", "object")))
    return fields


def engine_request(
    message: Any,
    timeout: float | None,
    context_size: int | None = None,
    max_answer_bytes: int = MAX_ANSWER_BYTES,
) -> dict[str, Any]:
    """The engine request an ExecuteActionRequest means; ActionError (code 2) if it means none.

    `timeout` is the time the invocation may take, already the earlier of the message's own
    and the call's deadline. `context_size`: len(message.context), when the caller has read it
    (each read of a bytes field is a copy of it: 4 MiB for a large context).
    """
    name = resources.manifest()["name"]
    if message.name != name:
        raise ActionError(
            f"Invalid input: this plugin serves the action {name}, not {shown(message.name)}",
            Category.INVALID_INPUT,
        )
    if context_size is None:
        context_size = len(message.context)
    _refuse_oversized(message, context_size, max_answer_bytes)
    request: dict[str, Any] = {
        "parameters": _parameters(message.parameters),
        "connection": connection_fields(message.connections),
    }
    return _with_timeout(request, timeout)


def credentials_request(message: Any, timeout: float | None) -> dict[str, Any]:
    """The engine request a TestCredentialsRequest means (its connection only)."""
    _refuse_oversized_connections(message.connections)
    return _with_timeout({"connection": connection_fields(message.connections)}, timeout)


def most_context_bytes(max_answer_bytes: int) -> int:
    """The largest context a call may carry: its answer, which echoes it, must fit."""
    return max_answer_bytes - ANSWER_RESERVE_BYTES


def _refuse_oversized(message: Any, context_size: int, max_answer_bytes: int) -> None:
    """Count and size what the runner sent before a byte of it is parsed, and make sure the
    answer, which echoes `context`, will fit the message cap (so a key is never made for an
    answer that cannot be sent)."""
    parameters = message.parameters
    if len(parameters) > MAX_PARAMETER_ENTRIES:
        raise too_many_parameters(len(parameters))
    size = sum(len(key) + len(value) for key, value in parameters.items())
    if size > MAX_PARAMETER_BYTES:
        raise ActionError(
            f"Invalid input: parameters: {size} characters in all (names and values, "
            f"{PARAMETERS_AS_JSON} included); at most {MAX_PARAMETER_BYTES}",
            Category.INVALID_INPUT,
        )
    most = most_context_bytes(max_answer_bytes)
    if context_size > most:
        raise ActionError(
            f"Invalid input: context: {context_size} bytes; at most {most}, so that the answer, "
            f"which carries it back, fits in {max_answer_bytes} bytes (--max-answer-bytes)",
            Category.INVALID_INPUT,
        )
    _refuse_oversized_connections(message.connections)


def _refuse_oversized_connections(connections: Mapping[str, Any]) -> None:
    if len(connections) > MAX_CONNECTIONS:
        raise too_many_connections(len(connections))
    for connection in connections.values():
        if len(connection.data) > MAX_CONNECTION_FIELDS:
            raise too_many_fields(len(connection.data))
        size = sum(len(key) + len(value) for key, value in connection.data.items())
        if size > MAX_CONNECTION_BYTES:
            raise ActionError(
                f"Invalid input: connections: {size} characters in one connection; at most "
                f"{MAX_CONNECTION_BYTES}",
                Category.INVALID_INPUT,
            )


def too_many_parameters(count: int) -> ActionError:
    """The refusal of a request with more parameters than the action could take."""
    return ActionError(
        f"Invalid input: parameters: {count} entries; this action takes at most "
        f"{MAX_PARAMETER_ENTRIES}",
        Category.INVALID_INPUT,
    )


def too_many_connections(count: int) -> ActionError:
    """The refusal of a request with more connections than any call needs."""
    return ActionError(
        f"Invalid input: connections: {count} entries; at most {MAX_CONNECTIONS}",
        Category.INVALID_INPUT,
    )


def too_many_fields(count: int) -> ActionError:
    """The refusal of a connection with more fields than any connection type has."""
    return ActionError(
        f"Invalid input: connections: {count} fields in one connection; at most "
        f"{MAX_CONNECTION_FIELDS}",
        Category.INVALID_INPUT,
    )


def _with_timeout(request: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    if timeout is not None:
        request["timeout"] = timeout
    return request


def _parameters(given: Mapping[str, str]) -> dict[str, Any]:
    """Parameters by name, by display name, or from one `parameters_as_json` object."""
    by_display_name = {p["display_name"]: p["name"] for p in resources.manifest()["parameters"]}
    parameters: dict[str, Any] = {}
    entries: list[tuple[str, Any]] = [
        (key, value) for key, value in given.items() if key != PARAMETERS_AS_JSON
    ]
    if PARAMETERS_AS_JSON in given:
        entries += list(read_json_object(given[PARAMETERS_AS_JSON], PARAMETERS_AS_JSON).items())
    for key, value in entries:
        name = by_display_name.get(key, key)
        if name in parameters:
            raise ActionError(
                f"Invalid input: parameters.{name} is given twice (by its name, its display name "
                f"or in {PARAMETERS_AS_JSON})",
                Category.INVALID_INPUT,
            )
        parameters[name] = value
    return parameters


def connection_fields(connections: Mapping[str, Any]) -> dict[str, str]:
    """The `aws` connection's fields; none at all means the runner's own identity."""
    if connection_type() in connections:
        return dict(connections[connection_type()].data)
    if connections:
        others = ", ".join(sorted(shown(key) for key in connections)[:5])
        raise ActionError(
            f"Invalid input: connections: this action takes a connection of type "
            f"{connection_type()}, not {others}",
            Category.INVALID_INPUT,
        )
    return {}


def read_json_object(text: str, field: str) -> dict[str, Any]:
    """A JSON object from untrusted text: code 2 for anything else, however it is broken."""
    try:
        value = json_input.loads(text)
    except ValueError as error:
        why = error if isinstance(error, json_input.UnreadableJSON) else "it is not valid JSON"
        raise ActionError(
            f"Invalid input: {field} is not a JSON object ({why})", Category.INVALID_INPUT
        ) from None
    if not isinstance(value, dict):
        raise ActionError(f"Invalid input: {field} must be a JSON object", Category.INVALID_INPUT)
    return value


def execute_response(pb: Any, response: Response, context: bytes, log: bytes) -> Any:
    """ExecuteActionResponse: the result as JSON (UTF-8) or IAM's XML as it was sent."""
    result = response.result
    if result is None:
        body = b""
    elif isinstance(result, str):
        body = result.encode("utf-8")
    else:
        body = json.dumps(result).encode("utf-8")
    return pb.ExecuteActionResponse(
        error_code=response.error_code,
        result=body,
        context=context,
        log_buffer=log[:MAX_LOG_BYTES],
        error_message=_bounded(response.error_message, MAX_ERROR_BYTES),
    )


def with_context(answer: Any, context: bytes) -> int:
    """Set an ExecuteActionResponse's context (echoed back); the answer's size on the wire.

    Counted, not measured: upb's ByteSize() serializes the message to measure it (each call on
    an answer echoing 4 MiB grew the process by 4 MiB or more, measured in process). Its other
    fields are small, so they are measured before the context is set; the context adds its
    tag, its length and its bytes."""
    size = int(answer.ByteSize())
    if context:
        number = answer.DESCRIPTOR.fields_by_name["context"].number
        size += _varint_size(number << 3 | 2) + _varint_size(len(context)) + len(context)
        answer.context = context
    return size


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _bounded(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut at a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", "ignore") + "..."


def credentials_response(pb: Any, response: Response) -> Any:
    """TestCredentialsResponse: the identity, or the error; a refusal is an answer."""
    valid = response.ok
    raw = (
        response.result
        if valid
        else {"error_code": response.error_code, "error_message": response.error_message}
    )
    return pb.TestCredentialsResponse(
        are_credentials_valid=valid, raw_validation_response=json.dumps(raw).encode("utf-8")
    )


def shown(name: str) -> str:
    """A name from the wire, shown if it is short printable ASCII (it could be anything: a
    megabyte, control characters that forge log lines)."""
    if 0 < len(name) <= 64 and name.isascii() and name.isprintable():
        return name
    return "(a name that is not shown)" if name else "(no name)"
