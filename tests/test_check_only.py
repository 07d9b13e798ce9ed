"""Check only: the identity, the user's keys and what would happen; nothing is created."""

from __future__ import annotations

import re

from plugin import execute
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM


def check(iam: LocalIAM, proxy: FaultProxy, **parameters: object) -> dict:  # type: ignore[type-arg]
    return execute(
        {
            "parameters": {"check_only": "true", **parameters},
            "connection": iam.connection(endpoint_url=proxy.url),
        }
    )


def test_a_free_slot_would_create_and_nothing_is_created(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    existing = iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    mark = proxy.mark()

    response = check(iam, proxy, user_name=user)

    assert response["error_code"] == 0, response["error_message"]
    result = response["result"]["Check"]
    assert result["WouldCreate"] is True
    assert result["UserName"] == user
    assert result["Identity"].startswith("arn:aws:")
    assert [k["AccessKeyId"] for k in result["ExistingKeys"]] == [existing]
    assert "AccessKey" not in response["result"]
    assert [e.action for e in proxy.since(mark)] == ["GetCallerIdentity", "ListAccessKeys"]
    assert iam.key_ids(user) == [existing]


def test_at_the_limit_it_says_what_the_policy_would_do(iam: LocalIAM, proxy: FaultProxy) -> None:
    user = iam.new_user()
    ids = [iam.admin.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(2)]
    iam.admin.update_access_key(UserName=user, AccessKeyId=ids[1], Status="Inactive")

    failing = check(iam, proxy, user_name=user)["result"]["Check"]
    rotating = check(iam, proxy, user_name=user, at_limit="delete_oldest_inactive")["result"][
        "Check"
    ]

    assert (failing["WouldCreate"], failing["Reason"]) == (
        False,
        "the user has two keys and at_limit is fail",
    )
    assert rotating["WouldCreate"] is True
    assert rotating["WouldDelete"] == ids[1]
    assert iam.key_ids(user) == sorted(ids)


def test_a_missing_user_fails_the_check(iam: LocalIAM, proxy: FaultProxy) -> None:
    response = check(iam, proxy, user_name="ghost", wait_for_user="1")
    assert response["error_code"] == 3
    assert response["error_message"].startswith(  # the check's own words: nothing is created
        'Check Only failed for user "ghost": NoSuchEntity'
    )
    assert re.search(
        r"\(waited [01]\.\ds for IAM to show the user; Wait For A New User was 1 s\)",
        response["error_message"],
    )


def test_check_only_with_raw_xml_is_refused(iam: LocalIAM, proxy: FaultProxy) -> None:
    mark = proxy.mark()
    response = check(iam, proxy, user_name="bob", disable_xml_to_json=True)
    assert response["error_code"] == 2
    assert "parameters.check_only: cannot be combined" in response["error_message"]
    assert proxy.since(mark) == []


def test_existing_keys_carry_iams_own_create_date_text(iam: LocalIAM, proxy: FaultProxy) -> None:
    """The check shows CreateDate as IAM wrote it, as the create does (not Python's isoformat)."""
    user = iam.new_user()
    iam.admin.create_access_key(UserName=user)
    mark = proxy.mark()

    response = check(iam, proxy, user_name=user)

    (listing,) = [e for e in proxy.since(mark) if e.action == "ListAccessKeys"]
    (shown,) = response["result"]["Check"]["ExistingKeys"]
    assert f"<CreateDate>{shown['CreateDate']}</CreateDate>".encode() in listing.upstream_body
    assert shown["CreateDate"].endswith("Z")
