"""The quick reader of the schemas never vouches for what jsonschema rejects."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.contract import resources, validation

KINDS = ["input", "output", "connection"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 50_000)
    | st.floats(allow_nan=False)
    | st.text(max_size=70)
)
near_valid_strings = st.sampled_from(
    [
        "us-east-1",
        "bob",
        "b" * 64,
        "b" * 65,
        "bob\n",
        "b\u00f3b",
        "Active",
        "AKIAIOSFODNN7EXAMPLE",
        "arn:aws:iam::123456789012:role/r",
        "http://127.0.0.1:5000",
        "",
        "true",
    ]
)
values = st.recursive(
    scalars | near_valid_strings,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)


VALID = {
    "input": {
        "regions": "us-east-1,eu-west-2",
        "user_name": "bob+ops@example",
        "disable_xml_to_json": True,
    },
    "output": resources.manifest()["output"]["example"],
    "connection": {
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "s" * 40,
        "role_arn": "arn:aws:iam::123456789012:role/automation",
        "external_id": "tenant-1",
        "duration_seconds": 900,
        "region": "us-east-1",
        "endpoint_url": "https://iam.amazonaws.com",
    },
}


@st.composite
def documents(draw: st.DrawFn, kind: str) -> Any:
    """A valid document with one or two fields changed, dropped or added: every rule gets hit."""
    document = copy.deepcopy(VALID[kind])
    target = document["AccessKey"] if kind == "output" else document
    properties = resources.schema(kind)["properties"]
    names = list(properties["AccessKey"]["properties"] if kind == "output" else properties)
    rules = properties["AccessKey"]["properties"] if kind == "output" else properties
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from([*names, "unknown"]))
        if draw(st.booleans()) and name in target:
            del target[name]
        else:
            target[name] = draw(field_values(rules.get(name, {})))
    return document


def field_values(rules: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value, or one just inside or just outside each limit this field's rules set."""
    edges: list[Any] = []
    for limit in ("minLength", "maxLength"):
        if limit in rules:
            edges += ["a" * max(0, rules[limit] + step) for step in (-1, 0, 1)]
    for limit in ("minimum", "maximum"):
        if limit in rules:
            edges += [rules[limit] + step for step in (-1, 0, 1)] + [float(rules[limit])]
    edges += list(rules.get("enum", [])) + [str(choice).lower() for choice in rules.get("enum", [])]
    return st.sampled_from(edges) | values if edges else values


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_surely_valid_implies_valid(kind: str, data: st.DataObject) -> None:
    document = data.draw(documents(kind))
    if validation.surely_valid(resources.schema(kind), document):
        assert validation._validator(kind).is_valid(document), document


@pytest.mark.parametrize("kind", KINDS)
def test_ordinary_documents_take_the_quick_path(kind: str) -> None:
    assert validation.surely_valid(resources.schema(kind), VALID[kind])
