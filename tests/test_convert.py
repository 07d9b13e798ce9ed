"""XML to JSON: IAM's strings kept as they are; anything unreadable is an error, never {}."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin import validation
from plugin.convert import access_key_document
from plugin.errors import ActionError, Category

FIXTURES = Path(__file__).parent / "fixtures"
HEAD = 'CreateAccessKey failed for user "Bob"'


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_converts_and_unwraps_to_the_documented_shape() -> None:
    document = access_key_document(body("create_access_key.xml"), HEAD)
    assert document == {
        "AccessKey": {
            "UserName": "Bob",
            "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "Status": "Active",
            "SecretAccessKey": "fixture-secret-not-a-real-key",
            "CreateDate": "2015-03-09T18:39:23.411Z",
        }
    }
    assert validation.problems("output", document, "result") == []


def test_an_absent_create_date_stays_absent() -> None:
    document = access_key_document(body("no_create_date.xml"), HEAD)
    assert "CreateDate" not in document["AccessKey"]
    assert validation.problems("output", document, "result") == []


@pytest.mark.parametrize(
    ("fixture", "why"),
    [
        ("truncated.xml", "it is not well-formed XML"),
        ("billion_laughs.xml", "it is not well-formed XML"),
        ("wrong_root.xml", "its root element is not CreateAccessKeyResponse"),
        ("no_access_key.xml", "it has no CreateAccessKeyResult/AccessKey element"),
    ],
    ids=["truncated", "entity-expansion", "wrong-root", "no-access-key"],
)
def test_an_unreadable_answer_is_an_error_without_the_body(fixture: str, why: str) -> None:
    with pytest.raises(ActionError) as raised:
        access_key_document(body(fixture), HEAD)
    assert raised.value.category is Category.TRANSIENT
    assert raised.value.message.startswith(f"{HEAD}: IAM's answer could not be read ({why})")
    assert "fixture-secret" not in str(raised.value)
    # No parser exception rides along in a traceback.
    assert raised.value.__context__ is None or raised.value.__suppress_context__


def test_missing_fields_are_reported_by_the_output_schema() -> None:
    xml = b"<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>Bob</UserName></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
    problems = validation.problems("output", access_key_document(xml, HEAD), "result")
    assert problems == [
        "result.AccessKey.AccessKeyId: is required",
        "result.AccessKey.SecretAccessKey: is required",
        "result.AccessKey.Status: is required",
    ]
