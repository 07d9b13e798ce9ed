"""Property-based: any malformed engine request ends in code 2, names the field, sends nothing."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin import execute
from plugin.contract import resources
from tests.support.cli import run_cli
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM

KNOWN = tuple(resources.schema("input")["properties"])
USER_NAME_CHARACTERS = set(string.ascii_letters + string.digits + "_+=,.@-")
MEGABYTE = "a" * 1_000_000

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
not_strings = json_values.filter(lambda v: not isinstance(v, str))
not_booleans = json_values.filter(lambda v: not isinstance(v, (bool, str))) | st.text(
    min_size=1
).filter(lambda t: t.strip().lower() not in ("true", "false"))

bad_user_names = (
    st.text(min_size=1).filter(lambda t: not set(t) <= USER_NAME_CHARACTERS)
    | st.text(alphabet=sorted(USER_NAME_CHARACTERS), min_size=65, max_size=300)
    | st.just(MEGABYTE)
    | st.sampled_from(["bob\n", "bob\x00", "b\u00f3b", "\u202ebob", "bob "])
)
# Regions are names of lower-case letters, digits and hyphens, comma-separated, or "*":
# anything with another character cannot be a valid list.
bad_regions = (
    st.tuples(
        st.text(max_size=20),
        st.characters(
            blacklist_characters="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-,* \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
        ),
        st.text(max_size=20),
    ).map("".join)
    | st.just(MEGABYTE)
    | st.sampled_from(["moon-1", "us-east-1,,", ",", "us-east-1,cn-north-1", "*,*", "us-east-1,*"])
)


@st.composite
def bad_requests(draw: st.DrawFn) -> tuple[Any, str]:
    """A request with one thing wrong, and the field path the error must name."""
    kind = draw(
        st.sampled_from(
            [
                "unknown-parameter",
                "user_name",
                "regions",
                "flag",
                "wrong-type",
                "connection",
                "timeout",
                "top-level",
                "not-an-object",
            ]
        )
    )
    parameters: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {}, optional={"regions": st.just("us-east-1"), "user_name": st.just("bob")}
        )
    )
    if kind == "unknown-parameter":
        name = draw(st.text(min_size=1) | st.just(MEGABYTE).map(lambda m: "k" + m))
        if name in KNOWN:
            name += "_"
        parameters[name] = draw(json_values | st.just(MEGABYTE))
        return {"parameters": parameters}, "unknown field"
    if kind == "user_name":
        parameters["user_name"] = draw(bad_user_names)
        return {"parameters": parameters}, "parameters.user_name"
    if kind == "regions":
        parameters["regions"] = draw(bad_regions)
        return {"parameters": parameters}, "parameters.regions"
    if kind == "flag":
        parameters["disable_xml_to_json"] = draw(not_booleans)
        return {"parameters": parameters}, "parameters.disable_xml_to_json"
    if kind == "wrong-type":
        name = draw(st.sampled_from(["regions", "user_name"]))
        parameters[name] = draw(not_strings)
        return {"parameters": parameters}, f"parameters.{name}"
    if kind == "connection":
        connection = draw(
            st.sampled_from(
                [
                    {"secret_access_key": "x" * 40},
                    {"session_token": "t" * 40},
                    {"access_key_id": "AKIAIOSFODNN7EXAMPLE"},
                    {"access_key_id": 7, "secret_access_key": "x" * 40},
                    {"endpoint_url": "ftp://127.0.0.1"},
                    {"region": "US EAST"},
                    {"password": "hunter2-hunter2"},
                ]
            )
        )
        return {"parameters": parameters, "connection": connection}, "connection."
    if kind == "timeout":
        timeout = draw(st.sampled_from([0, -1, 3601, "soon", [], {}, True, float("inf")]))
        return {"parameters": parameters, "timeout": timeout}, "timeout"
    if kind == "top-level":
        name = draw(
            st.text(min_size=1).filter(lambda t: t not in ("parameters", "connection", "timeout"))
        )
        return {"parameters": parameters, name: draw(json_values)}, "unknown field"
    return draw(
        st.lists(json_values, max_size=2) | json_scalars
    ), "the request must be a JSON object"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=bad_requests())
def test_any_malformed_request_is_refused_before_anything_is_sent(
    iam: LocalIAM, proxy: FaultProxy, case: tuple[Any, str]
) -> None:
    request, field = case
    if isinstance(request, dict):
        connection = {**iam.connection(endpoint_url=proxy.url), **request.get("connection", {})}
        if (
            "secret_access_key" in request.get("connection", {})
            and "access_key_id" not in request["connection"]
        ):
            connection.pop("access_key_id")
        if "session_token" in request.get("connection", {}):
            connection.pop("access_key_id")
            connection.pop("secret_access_key")
        if request.get("connection", {}).get("access_key_id") == "AKIAIOSFODNN7EXAMPLE":
            connection.pop("secret_access_key")
        request = {**request, "connection": connection}
    mark = proxy.mark()

    response = execute(request)

    assert response["error_code"] == 2, response["error_message"][:300]
    assert response["result"] is None
    assert field in response["error_message"]
    assert "Traceback" not in response["error_message"]
    assert len(response["error_message"]) < 2000  # a megabyte in is not a megabyte out
    assert proxy.since(mark) == []


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stdin=st.binary(min_size=1, max_size=200).filter(lambda b: not _is_utf8(b)))
def test_non_utf8_stdin_is_refused(cli_env: dict[str, str], iam: LocalIAM, stdin: bytes) -> None:
    mark = iam.mark()
    completed = run_cli("execute", env=cli_env, stdin=stdin)
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["error_code"] == 2
    assert "Traceback" not in completed.stderr
    assert iam.since(mark) == []


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _nested(depth: int, inner: object, wrap: str) -> object:
    value = inner
    for _ in range(depth):
        value = {"a": value} if wrap == "object" else [value]
    return value


@pytest.mark.parametrize("wrap", ["object", "list"])
def test_a_value_nested_thousands_deep_is_invalid_input_naming_the_field(wrap: str) -> None:
    """Python-side engines can pass any structure: a deep one is code 2, not a crash (code 1)."""
    from plugin import execute

    deep = _nested(5000, "x", wrap)
    response = execute({"parameters": {"user_name": deep}, "connection": {"region": deep}})

    assert response["error_code"] == 2
    assert response["error_message"] == (
        "Invalid input: parameters.user_name: must be a string; connection.region: must be a string"
    )
