"""Validate and normalise one engine request before anything is sent to AWS.

Engines send every value as they got it from a form: "" for an empty field, "true"/"false" for a
checkbox. Both are understood here; everything else must match the schemas exactly. A parameter
may be named by its name or by the display name its form shows (`User Name`), on every door that
comes through here (execute, the Python function, gRPC, Shuffle). All problems are collected and
reported at once, each by the path of its field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from . import lifetime, recipients, regions, resources, validation
from .errors import ActionError, Category

REQUEST_FIELDS = ("parameters", "connection", "timeout")
_WHOLE = re.compile(r"\s*[+-]?[0-9]{1,6}\s*")  # a whole number, as a form sends it
MAX_TIMEOUT_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class Connection:
    """How to sign in to AWS; what is None comes from the standard AWS environment."""

    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)
    role_arn: str | None = None
    external_id: str | None = None
    role_session_name: str | None = None
    duration_seconds: int | None = None
    region: str | None = None
    endpoint_url: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The values that must never reach a log."""
        return tuple(value for value in (self.secret_access_key, self.session_token) if value)


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The action's parameters, validated, with defaults applied."""

    regions: regions.RegionSelection
    user_name: str | None
    disable_xml_to_json: bool
    status: str = "Active"
    at_limit: str = "fail"
    check_only: bool = False
    vault: str | None = None
    seal_secret_to: str | None = None
    wait_for_user: int = 0
    wait_until_usable: bool = False
    ses_smtp_region: str | None = None
    idempotency_key: str | None = None
    description: str | None = None
    expires_after: str | None = None
    expiry_role_arn: str | None = None
    report_other_keys: bool = False

    def user_wait_seconds(self) -> int:
        """Wait For A New User applies to a named user. With none, the key is for the identity
        that signs, which exists; NoSuchEntity then means something else (an unknown key id)."""
        return self.wait_for_user if self.user_name else 0


@dataclasses.dataclass(frozen=True)
class CheckedRequest:
    """An engine's request (the mapping a door hands the engine: `request` in this code)
    parsed and checked, with defaults applied: what the action runs. A protocol's own message
    (gRPC's ExecuteActionRequest, say) is a `message`."""

    parameters: Parameters
    connection: Connection
    timeout: float | None = None  # seconds for the whole invocation, as the engine allows


def parse_request(request: Any) -> CheckedRequest:
    """Check a whole engine request; raise one INVALID_INPUT error naming every bad field."""
    if not isinstance(request, Mapping):
        raise ActionError(
            "Invalid input: the request must be a JSON object", Category.INVALID_INPUT
        )
    problems = [
        f"{validation.field_name(name)}: unknown field (known fields: {', '.join(REQUEST_FIELDS)})"
        for name in request
        if name not in REQUEST_FIELDS
    ]
    raw_parameters = _by_name(_mapping(request, "parameters", problems), problems)
    raw_connection = _mapping(request, "connection", problems)

    given = _normalise(raw_parameters, resources.schema("input"))
    problems += validation.problems("input", given, "parameters")
    connection_fields = _normalise(raw_connection, resources.schema("connection"))
    problems += validation.problems("connection", connection_fields, "connection")

    timeout = _timeout(request, problems)

    selection = regions.RegionSelection()
    if not _has_problem(problems, "parameters.regions") and isinstance(given.get("regions"), str):
        selection, region_problems = regions.parse(given["regions"])
        problems += region_problems
        problems += _partition_disagreement(selection, connection_fields.get("region"))
    problems += _raw_xml_conflicts(given)
    if isinstance(given.get("vault"), str) and isinstance(given.get("seal_secret_to"), str):
        problems.append(
            "parameters.vault: cannot be combined with parameters.seal_secret_to (the secret "
            "goes to one place)"
        )
    problems += _sealing_problems(given, problems)
    problems += _usable_problems(given)
    if isinstance(given.get("idempotency_key"), str) and "user_name" not in given:
        problems.append(
            "parameters.idempotency_key: needs parameters.user_name (the token is remembered on "
            "the user)"
        )
    problems += _ses_region_problems(given, selection, connection_fields.get("region"), problems)
    problems += lifetime.problems(given, selection, problems)
    if problems:
        raise ActionError("Invalid input: " + "; ".join(problems), Category.INVALID_INPUT)

    defaults = {
        name: rules["default"]
        for name, rules in resources.schema("input")["properties"].items()
        if "default" in rules
    }
    values = {**defaults, **given}
    parameters = Parameters(
        regions=selection,
        user_name=values.get("user_name"),
        disable_xml_to_json=values["disable_xml_to_json"],
        status=values["status"],
        at_limit=values["at_limit"],
        check_only=values["check_only"],
        vault=values.get("vault"),
        seal_secret_to=values.get("seal_secret_to"),
        wait_for_user=values["wait_for_user"],
        wait_until_usable=values["wait_until_usable"],
        ses_smtp_region=values.get("ses_smtp_region"),
        idempotency_key=values.get("idempotency_key"),
        description=values.get("description"),
        expires_after=values.get("expires_after"),
        expiry_role_arn=values.get("expiry_role_arn"),
        report_other_keys=values["report_other_keys"],
    )
    if isinstance(connection_fields.get("duration_seconds"), float):
        # JSON Schema counts 900.0 as an integer; botocore wants an int.
        connection_fields["duration_seconds"] = int(connection_fields["duration_seconds"])
    return CheckedRequest(parameters, Connection(**connection_fields), timeout)


def _timeout(request: Mapping[str, Any], problems: list[str]) -> float | None:
    """The engine's time limit for the invocation (the Blink SDK's ExecuteActionRequest.timeout)."""
    value = request.get("timeout")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append("timeout: must be a number of seconds")
        return None
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        problems.append(f"timeout: must be more than 0 and at most {MAX_TIMEOUT_SECONDS} seconds")
        return None
    return float(value)


# What the raw XML mode (IAM's create answer, as it is) cannot carry: (field, the values that
# conflict, how the message names them, why).
_NOT_WITH_RAW_XML: tuple[tuple[str, Callable[[Any], bool], str, str], ...] = (
    ("status", lambda v: v == "Inactive", "Inactive ", "the XML is the create's answer: Active"),
    (
        "at_limit",
        lambda v: v == "delete_oldest_inactive",
        "delete_oldest_inactive ",
        "the XML could not name the deleted key",
    ),
    ("seal_secret_to", lambda v: isinstance(v, str), "", "the XML carries the secret in clear"),
    ("check_only", lambda v: v is True, "", "a check has no XML answer to return"),
    ("vault", lambda v: isinstance(v, str), "", "the XML carries the secret in clear"),
    (
        "wait_until_usable",
        lambda v: v is True,
        "",
        "the XML is the create's answer and could not say whether the key works",
    ),
    (
        "idempotency_key",
        lambda v: isinstance(v, str),
        "",
        "the XML is the create's answer and could not name a key it replaced",
    ),
    (
        "ses_smtp_region",
        lambda v: isinstance(v, str),
        "",
        "the XML is the create's answer and has no SMTP password",
    ),
    (
        "expires_after",
        lambda v: isinstance(v, str),
        "",
        "the XML is the create's answer and could not say when the key expires",
    ),
    (
        "report_other_keys",
        lambda v: v is True,
        "",
        "the XML is the create's answer and has no other keys",
    ),
)


def _has_problem(problems: list[str], field: str) -> bool:
    """Whether the schema already found `field` bad (its meaning is then not read further)."""
    return any(problem.startswith(f"{field}:") for problem in problems)


def _raw_xml_conflicts(given: Mapping[str, Any]) -> list[str]:
    if given.get("disable_xml_to_json") is not True:
        return []
    return [
        f"parameters.{field}: {label}cannot be combined with parameters.disable_xml_to_json ({why})"
        for field, conflicts, label, why in _NOT_WITH_RAW_XML
        if field in given and conflicts(given[field])
    ]


def _sealing_problems(given: Mapping[str, Any], problems: list[str]) -> list[str]:
    """A recipient must be a real age key (checked only once its pattern holds)."""
    recipient = given.get("seal_secret_to")
    if not isinstance(recipient, str) or _has_problem(problems, "parameters.seal_secret_to"):
        return []
    why = recipients.recipient_problem(recipient)
    return [f"parameters.seal_secret_to: {why}"] if why else []


def _usable_problems(given: Mapping[str, Any]) -> list[str]:
    if given.get("wait_until_usable") is True and given.get("status") == "Inactive":
        return [
            "parameters.wait_until_usable: cannot be combined with parameters.status Inactive "
            "(an Inactive key is never accepted)"
        ]
    return []


def _ses_region_problems(
    given: Mapping[str, Any], selection: regions.RegionSelection, home: Any, problems: list[str]
) -> list[str]:
    """The SMTP password's region must be a region botocore lists, of the action's partition."""
    region = given.get("ses_smtp_region")
    if not isinstance(region, str) or _has_problem(problems, "parameters.ses_smtp_region"):
        return []
    if not selection.is_all:
        named = regions.partition_of(selection.names[0])
    else:
        named = regions.partition_of(home) if isinstance(home, str) else None
    partition = named.name if named is not None else None
    return regions.region_problems(region, "parameters.ses_smtp_region", partition)


def _partition_disagreement(selection: regions.RegionSelection, home: Any) -> list[str]:
    """The regions and the connection's default region must be of one partition."""
    if selection.is_all or not isinstance(home, str):
        return []
    home_partition = regions.partition_of(home)
    chosen = regions.partition_of(selection.names[0])
    if home_partition is None or chosen is None or home_partition == chosen:
        return []
    return [
        f"connection.region: {home} is in partition {home_partition.name}, but "
        f"parameters.regions names regions of {chosen.name}; one set of credentials lives in "
        "one partition"
    ]


@functools.cache
def _display_names() -> dict[str, str]:
    """Each parameter's display name (the manifest's), to its name."""
    return {p["display_name"]: p["name"] for p in resources.manifest()["parameters"]}


def _by_name(given: Mapping[str, Any], problems: list[str]) -> Mapping[str, Any]:
    """The parameters keyed by name, those given by display name included; a parameter given
    both ways is a problem (which value was meant?)."""
    names = resources.schema("input")["properties"]
    if all(key in names for key in given):
        return given  # the common case: the manifest (and yaml) need not be read
    by_name: dict[Any, Any] = {}
    for key, value in given.items():
        name = key if key in names or not isinstance(key, str) else _display_names().get(key, key)
        if name in by_name:
            problems.append(
                f"parameters.{name}: is given twice (by its name and by its display name)"
            )
        by_name[name] = value
    return by_name


def _mapping(request: Mapping[str, Any], field: str, problems: list[str]) -> Mapping[str, Any]:
    if field not in request:
        return {}
    value = request[field]
    if not isinstance(value, Mapping):
        problems.append(f"{field}: must be an object")
        return {}
    return value


def _normalise(values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty strings (a field left empty) and read "true"/"false" where a boolean is due.

    A null is kept, so that the schema reports it: it is not what a form sends for "empty".
    """
    properties = schema.get("properties", {})
    normalised: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str) and value == "" and name in properties:
            continue  # a known field left empty; an unknown one is reported, empty or not
        if isinstance(value, (Mapping, list, tuple)):
            # Every field is a scalar, so any container is wrong whatever it holds; an empty
            # stand-in keeps the verdict and spares the validator a structure nested
            # thousands deep (its messages would recurse through it).
            value = {} if isinstance(value, Mapping) else []
        expected = properties.get(name, {}).get("type")
        if expected == "boolean" and isinstance(value, str):
            value = {"true": True, "false": False}.get(value.strip().lower(), value)
        elif expected == "integer" and isinstance(value, str) and _WHOLE.fullmatch(value):
            value = int(value.strip())
        normalised[str(name)] = value
    return normalised
