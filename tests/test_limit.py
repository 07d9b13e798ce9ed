"""At the two-key limit: fail listing the keys, or delete the oldest Inactive one, never an Active one."""

from __future__ import annotations

import re

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM


def user_with_two_keys(iam: LocalIAM, inactive: int) -> tuple[str, list[str]]:
    user = iam.new_user()
    ids = [iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(2)]
    for key_id in ids[:inactive]:
        iam.admin.update_access_key(UserName=user, AccessKeyId=key_id, Status="Inactive")
    return user, ids


def create(iam: LocalIAM, proxy: FaultProxy, user: str, **parameters: object) -> dict:  # type: ignore[type-arg]
    return execute(
        {
            "parameters": {"user_name": user, **parameters},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )


def test_by_default_the_limit_fails_and_lists_the_keys(iam: LocalIAM, proxy: FaultProxy) -> None:
    user, ids = user_with_two_keys(iam, inactive=1)

    response = create(iam, proxy, user)

    assert response["error_code"] == 3
    message = response["error_message"]
    assert re.fullmatch(
        rf'CreateAccessKey failed for user "{user}": LimitExceeded: Cannot exceed quota for '
        rf"AccessKeysPerUser: 2\. The user's keys: {ids[0]} \(Inactive, \d{{1,2}} s old\); "
        rf"{ids[1]} \(Active, \d{{1,2}} s old\)\. Delete one, or run with "
        rf"at_limit=delete_oldest_inactive to let the action delete {ids[0]}, the oldest "
        r"Inactive key",
        message,
    )
    assert iam.key_ids(user) == sorted(ids)


def test_with_two_active_keys_the_hint_does_not_offer_the_policy(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    """Issue 26: the hint suggested at_limit=delete_oldest_inactive, which then failed."""
    user, ids = user_with_two_keys(iam, inactive=0)

    message = create(iam, proxy, user)["error_message"]

    assert re.fullmatch(
        rf'CreateAccessKey failed for user "{user}": LimitExceeded: Cannot exceed quota for '
        rf"AccessKeysPerUser: 2\. The user's keys: {ids[0]} \(Active, \d{{1,2}} s old\); "
        rf"{ids[1]} \(Active, \d{{1,2}} s old\)\. None is Inactive, and an Active key is never "
        r"deleted to make room: delete one that nobody uses \(aws iam delete-access-key\), or "
        r"deactivate it \(aws iam update-access-key --status Inactive\) and run with "
        r"at_limit=delete_oldest_inactive",
        message,
    )


def test_delete_oldest_inactive_makes_room_and_says_which(iam: LocalIAM, proxy: FaultProxy) -> None:
    user, ids = user_with_two_keys(iam, inactive=2)
    mark = proxy.mark()

    response = create(iam, proxy, user, at_limit="delete_oldest_inactive")

    assert response["error_code"] == 0, response["error_message"]
    assert response["result"]["DeletedAccessKeyId"] == ids[0]
    new = response["result"]["AccessKey"]["AccessKeyId"]
    assert iam.key_ids(user) == sorted([ids[1], new])
    actions = [e.action for e in proxy.since(mark)]
    assert actions == ["CreateAccessKey", "ListAccessKeys", "DeleteAccessKey", "CreateAccessKey"]


def test_an_active_key_is_never_deleted_to_make_room(iam: LocalIAM, proxy: FaultProxy) -> None:
    user, ids = user_with_two_keys(iam, inactive=0)

    response = create(iam, proxy, user, at_limit="delete_oldest_inactive")

    assert response["error_code"] == 3
    assert "None is Inactive, and an Active key is never deleted" in response["error_message"]
    assert all(key_id in response["error_message"] for key_id in ids)
    assert iam.key_ids(user) == sorted(ids)


def test_without_permission_to_list_the_refusal_is_iams_own(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    user, ids = user_with_two_keys(iam, inactive=2)
    proxy.inject("ListAccessKeys", faults.DENY)

    response = create(iam, proxy, user, at_limit="delete_oldest_inactive")

    assert response["error_code"] == 3
    assert "LimitExceeded" in response["error_message"]
    assert iam.key_ids(user) == sorted(ids)


def test_the_policy_with_raw_xml_is_refused_before_anything_is_sent(
    iam: LocalIAM, proxy: FaultProxy
) -> None:
    mark = proxy.mark()
    response = create(
        iam, proxy, "bob", at_limit="delete_oldest_inactive", disable_xml_to_json=True
    )
    assert response["error_code"] == 2
    assert (
        "parameters.at_limit: delete_oldest_inactive cannot be combined"
        in response["error_message"]
    )
    assert proxy.since(mark) == []
