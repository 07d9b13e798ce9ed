"""Status at creation: an Inactive key, set right after the create; never left Active by mistake."""

from __future__ import annotations

import pytest

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM
from tests.support.refusals import assert_refused_before_sending


def statuses(iam: LocalIAM, user: str) -> list[str]:
    return [key["Status"] for key in iam.admin.list_access_keys(UserName=user)["AccessKeyMetadata"]]


def test_an_inactive_key_is_created_inactive(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    mark = proxy.mark()

    response = execute(
        {
            "parameters": {"user_name": user, "status": "Inactive"},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )

    assert response["error_code"] == 0, response["error_message"]
    assert response["result"]["AccessKey"]["Status"] == "Inactive"
    assert statuses(iam, user) == ["Inactive"]
    assert [e.action for e in proxy.since(mark)] == ["CreateAccessKey", "UpdateAccessKey"]


@pytest.mark.parametrize("status", [None, "Active", ""], ids=["omitted", "active", "empty"])
def test_active_is_the_default_and_costs_no_extra_request(
    iam: LocalIAM, proxy: FaultProxy, status: str | None
) -> None:
    user = iam.new_user()
    parameters = {"user_name": user} if status is None else {"user_name": user, "status": status}
    mark = proxy.mark()
    response = execute(
        {"parameters": parameters, "connection": iam.connection(endpoint_url=proxy.url)}
    )
    assert response["result"]["AccessKey"]["Status"] == "Active"
    assert [e.action for e in proxy.since(mark)] == ["CreateAccessKey"]


def test_if_the_status_cannot_be_set_the_key_is_deleted(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    proxy.inject("UpdateAccessKey", faults.DENY)

    response = execute(
        {
            "parameters": {"user_name": user, "status": "Inactive"},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )

    assert response["error_code"] == 3
    message = response["error_message"]
    assert message.startswith(
        f'CreateAccessKey failed for user "{user}": UpdateAccessKey to Inactive: AccessDenied'
    )
    assert "was deleted, so nothing is left behind" in message
    assert iam.key_ids(user) == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"status": "inactive"}, "parameters.status: must be one of Active, Inactive"),
        (
            {"status": "Inactive", "disable_xml_to_json": "true"},
            "parameters.status: Inactive cannot be combined",
        ),
    ],
    ids=["wrong-case", "with-raw-xml"],
)
def test_bad_status_input_sends_nothing(
    iam: LocalIAM, proxy: FaultProxy, parameters: dict[str, object], expected: str
) -> None:
    assert_refused_before_sending(iam, proxy, parameters, expected)


@pytest.mark.parametrize(
    "lost_delete",
    [faults.DROP_AFTER_FORWARD, faults.Fault("reset before IAM", forward=False, drop=True)],
    ids=["reset-after-iam-deleted", "reset-before-iam"],
)
def test_a_lost_delete_of_an_undeliverable_key_is_tried_once_more(
    iam: LocalIAM, proxy: FaultProxy, lost_delete: faults.Fault
) -> None:
    user = iam.new_user()
    proxy.inject("UpdateAccessKey", faults.DENY)
    proxy.inject("DeleteAccessKey", lost_delete)
    mark = proxy.mark()

    response = execute(
        {
            "parameters": {"user_name": user, "status": "Inactive"},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )

    assert response["error_code"] == 3
    assert response["error_message"].endswith("was deleted, so nothing is left behind")
    assert [e.action for e in proxy.since(mark)].count("DeleteAccessKey") == 2
    assert iam.key_ids(user) == []
