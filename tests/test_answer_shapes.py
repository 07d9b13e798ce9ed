"""Answers shaped otherwise than moto's: a root user's key (no UserName), ns2-prefixed XML.

No user name: the key is the signing identity's, which may be the account's root user.
IAM's answer for a root key carries no UserName (the AWS SDKs document it as absent). moto
always names a user, so the fault proxy removes <UserName> from its answers, as IAM would for
root; the identity signing here is a user's own key, which moto resolves without a user name.
"""

from __future__ import annotations

import re
import time

import pytest

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM

AS_ROOT = faults.rewrite(
    "answered as for root", lambda body: re.sub(rb"<UserName>[^<]*</UserName>", b"", body)
)


def signing_identity(iam: LocalIAM) -> tuple[str, dict[str, str]]:
    """A user, and a connection that signs as that user (its own key)."""
    user = iam.new_user()
    key = iam.admin.create_access_key(UserName=user)["AccessKey"]
    connection = {
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "region": "us-east-1",
    }
    return user, connection


def run(proxy: FaultProxy, connection: dict[str, str], **parameters: object) -> dict:  # type: ignore[type-arg]
    return execute(
        {"parameters": parameters, "connection": {**connection, "endpoint_url": proxy.url}}
    )


def test_a_key_without_a_user_name_is_delivered(iam: LocalIAM, proxy: FaultProxy) -> None:
    owner, connection = signing_identity(iam)
    proxy.inject("CreateAccessKey", AS_ROOT)
    mark = proxy.mark()

    response = run(proxy, connection)

    assert response["error_code"] == 0, response["error_message"]
    key = response["result"]["AccessKey"]
    assert "UserName" not in key
    assert proxy.issued_secret(mark) == key["SecretAccessKey"]
    assert key["AccessKeyId"] in iam.key_ids(owner)


def test_an_inactive_root_key_is_updated_without_a_user_name(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    owner, connection = signing_identity(iam)
    proxy.inject("CreateAccessKey", AS_ROOT)
    mark = proxy.mark()

    response = run(proxy, connection, status="Inactive")

    assert response["error_code"] == 0, response["error_message"]
    (update,) = [e for e in proxy.since(mark) if e.action == "UpdateAccessKey"]
    assert b"UserName" not in update.request_body
    listed = iam.admin.list_access_keys(UserName=owner)["AccessKeyMetadata"]
    new = response["result"]["AccessKey"]["AccessKeyId"]
    assert {k["AccessKeyId"]: k["Status"] for k in listed}[new] == "Inactive"


def test_reconciliation_for_root_lists_keys_without_a_user_name(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    owner, connection = signing_identity(iam)
    before = iam.key_ids(owner)
    time.sleep(2.1)  # the window is judged in whole seconds of IAM's clock: make the key older
    proxy.inject("CreateAccessKey", faults.DROP_AFTER_FORWARD, AS_ROOT)
    mark = proxy.mark()

    response = run(proxy, connection)

    assert response["error_code"] == 0, response["error_message"]
    sent = [e for e in proxy.since(mark)]
    assert [e.action for e in sent] == [
        "CreateAccessKey",
        "ListAccessKeys",
        "DeleteAccessKey",
        "CreateAccessKey",
    ]
    assert all(b"UserName" not in e.request_body for e in sent)
    new = response["result"]["AccessKey"]["AccessKeyId"]
    assert iam.key_ids(owner) == sorted([*before, new])


def _prefixed(body: bytes) -> bytes:
    """moto's answer as some IAM-compatible endpoints write it: a declaration, `ns2:` names."""
    body = re.sub(rb"<(/?)(\w+)", rb"<\1ns2:\2", body).replace(b"xmlns=", b"xmlns:ns2=")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


@pytest.mark.parametrize("raw", [False, True], ids=["json", "raw-xml"])
def test_a_namespace_prefixed_answer_is_delivered(
    iam: LocalIAM, proxy: FaultProxy, raw: bool
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.rewrite("ns2 prefixes", _prefixed))
    mark = proxy.mark()

    response = execute(
        {
            "parameters": {"user_name": user, "disable_xml_to_json": raw},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )

    assert response["error_code"] == 0, response["error_message"]
    (exchange,) = [e for e in proxy.since(mark) if e.action == "CreateAccessKey"]
    if raw:
        assert response["result"] == _prefixed(exchange.upstream_body).decode()
    else:
        key = response["result"]["AccessKey"]
        assert key["UserName"] == user
        assert iam.key_ids(user) == [key["AccessKeyId"]]
