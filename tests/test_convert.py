"""XML to JSON: IAM's strings kept as they are; anything unreadable is an error, never {}."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.aws.convert import UnreadableAnswer, access_key_document

FIXTURES = Path(__file__).parent / "fixtures"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_converts_and_unwraps_to_the_documented_shape() -> None:
    document = access_key_document(body("create_access_key.xml"))
    assert document == {
        "AccessKey": {
            "UserName": "Bob",
            "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "Status": "Active",
            "SecretAccessKey": "fixture-secret-not-a-real-key",
            "CreateDate": "2015-03-09T18:39:23.411Z",
        }
    }


def test_namespace_prefixed_elements_are_read_by_their_local_names() -> None:
    """Some IAM-compatible endpoints answer with an XML declaration, `ns2:` prefixes and
    ResponseMetadata first."""
    assert access_key_document(body("namespace_prefixed.xml")) == access_key_document(
        body("create_access_key.xml")
    )


def test_a_root_users_key_has_no_user_name_and_is_accepted() -> None:
    document = access_key_document(body("no_user_name.xml"))
    assert "UserName" not in document["AccessKey"]
    assert document["AccessKey"]["AccessKeyId"] == "AKIAIOSFODNN7EXAMPLE"


def test_an_absent_create_date_stays_absent() -> None:
    document = access_key_document(body("no_create_date.xml"))
    assert "CreateDate" not in document["AccessKey"]


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
    with pytest.raises(UnreadableAnswer) as raised:
        access_key_document(body(fixture))
    assert raised.value.why == why
    assert "fixture-secret" not in str(raised.value)
    # No parser exception rides along in a traceback.
    assert raised.value.__context__ is None or raised.value.__suppress_context__


def test_missing_fields_are_reported_by_the_output_schema() -> None:
    xml = b"<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>Bob</UserName><SecretAccessKey>fixture-secret-not-a-real-key</SecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
    with pytest.raises(UnreadableAnswer) as raised:
        access_key_document(xml)
    assert raised.value.why == (
        "it is not a complete access key: result.AccessKey.AccessKeyId: is required; "
        "result.AccessKey.Status: is required"
    )


def test_an_answer_without_the_secret_is_unreadable_even_though_a_sealed_result_is_valid() -> None:
    xml = b"<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>Bob</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status><SealedSecretAccessKey>-----BEGIN AGE ENCRYPTED FILE-----\nx</SealedSecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
    with pytest.raises(UnreadableAnswer) as raised:
        access_key_document(xml)
    assert raised.value.why == "it has no SecretAccessKey"
