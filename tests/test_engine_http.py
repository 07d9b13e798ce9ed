"""The engine interface over real HTTP against the local IAM endpoint."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from plugin import execute
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM
from tests.support.ports import free_port


def create_requests(iam: LocalIAM, mark: int) -> list[str]:
    return [e.action for e in iam.since(mark) if e.action == "CreateAccessKey"]


def test_creates_one_key_for_the_named_user(iam: LocalIAM) -> None:
    user = iam.new_user()
    mark = iam.mark()

    response = execute(
        {"parameters": {"regions": "us-east-1", "user_name": user}, "connection": iam.connection()}
    )

    assert response["error_code"] == 0, response["error_message"]
    assert response["error_message"] == ""
    key = response["result"]["AccessKey"]
    assert list(key) == ["AccessKeyId", "CreateDate", "SecretAccessKey", "Status", "UserName"]
    assert key["UserName"] == user
    assert key["Status"] == "Active"
    assert key["SecretAccessKey"]
    assert [e.action for e in iam.since(mark)] == ["CreateAccessKey"]  # one request, no more
    assert iam.key_ids(user) == [key["AccessKeyId"]]


def test_values_are_iams_own_strings(iam: LocalIAM) -> None:
    user = iam.new_user()
    mark = iam.mark()

    key = execute({"parameters": {"user_name": user}, "connection": iam.connection()})["result"][
        "AccessKey"
    ]

    sent = iam.since(mark)[-1].body.decode()
    create_date = re.search(r"<CreateDate>([^<]*)</CreateDate>", sent)
    assert create_date is not None
    assert key["CreateDate"] == create_date.group(1)
    listed = iam.admin.list_access_keys(UserName=user)["AccessKeyMetadata"][0]["CreateDate"]
    assert datetime.fromisoformat(key["CreateDate"].replace("Z", "+00:00")) == listed


@pytest.mark.parametrize(
    "regions",
    ["us-east-1,eu-west-2", " us-east-1 , eu-west-2 , us-east-1 ", "*", "", "EU-WEST-1"],
    ids=["comma-list", "spaces-and-duplicates", "all-regions", "empty-means-all", "upper-case"],
)
def test_any_region_list_creates_exactly_one_key(iam: LocalIAM, regions: str) -> None:
    user = iam.new_user()
    mark = iam.mark()

    response = execute(
        {"parameters": {"regions": regions, "user_name": user}, "connection": iam.connection()}
    )

    assert response["error_code"] == 0, response["error_message"]
    assert len(iam.key_ids(user)) == 1
    assert len(create_requests(iam, mark)) == 1


def test_without_user_name_the_key_is_for_the_signing_user(iam: LocalIAM) -> None:
    user = iam.new_user()
    own = iam.admin.create_access_key(UserName=user)["AccessKey"]
    connection = iam.connection(
        access_key_id=own["AccessKeyId"], secret_access_key=own["SecretAccessKey"]
    )

    response = execute({"parameters": {"regions": "us-east-1"}, "connection": connection})

    assert response["error_code"] == 0, response["error_message"]
    new = response["result"]["AccessKey"]
    assert new["UserName"] == user
    assert iam.key_ids(user) == sorted([own["AccessKeyId"], new["AccessKeyId"]])


@pytest.mark.parametrize(
    "flag", [True, "true", "TRUE", " True "], ids=["bool", "string", "upper", "padded"]
)
def test_raw_xml_mode_returns_the_body_byte_for_byte(iam: LocalIAM, flag: object) -> None:
    user = iam.new_user()
    mark = iam.mark()

    response = execute(
        {
            "parameters": {"user_name": user, "disable_xml_to_json": flag},
            "connection": iam.connection(),
        }
    )

    assert response["error_code"] == 0, response["error_message"]
    sent = [e for e in iam.since(mark) if e.action == "CreateAccessKey"]
    assert len(sent) == 1
    assert response["result"] == sent[0].body.decode("utf-8")
    assert response["result"].startswith("<CreateAccessKeyResponse")


@pytest.mark.parametrize(
    "flag", [False, "false", "FALSE", ""], ids=["bool", "string", "upper", "empty"]
)
def test_json_mode_when_the_flag_is_off_or_empty(iam: LocalIAM, flag: object) -> None:
    user = iam.new_user()
    response = execute(
        {
            "parameters": {"user_name": user, "disable_xml_to_json": flag},
            "connection": iam.connection(),
        }
    )
    assert response["error_code"] == 0, response["error_message"]
    assert response["result"]["AccessKey"]["UserName"] == user


def test_unknown_user_is_rejected_with_iams_words(iam: LocalIAM) -> None:
    mark = iam.mark()
    response = execute(
        {"parameters": {"user_name": "ghost", "wait_for_user": 0}, "connection": iam.connection()}
    )

    assert response["error_code"] == 3
    assert response["result"] is None
    assert re.fullmatch(
        r'CreateAccessKey failed for user "ghost": NoSuchEntity: The user with name ghost '
        r"cannot be found\. \(request id \w+\)",
        response["error_message"],
    )
    assert len(create_requests(iam, mark)) == 1  # rejected once, not retried


def test_third_key_hits_the_quota_and_nothing_is_left_behind(iam: LocalIAM) -> None:
    user = iam.new_user()
    request = {"parameters": {"user_name": user}, "connection": iam.connection()}
    first, second = execute(request), execute(request)
    assert (first["error_code"], second["error_code"]) == (0, 0)
    mark = iam.mark()

    third = execute(request)

    assert third["error_code"] == 3
    assert third["error_message"].startswith(
        f'CreateAccessKey failed for user "{user}": LimitExceeded: '
    )
    assert len(create_requests(iam, mark)) == 1
    expected = sorted(r["result"]["AccessKey"]["AccessKeyId"] for r in (first, second))
    assert iam.key_ids(user) == expected


INVALID_REQUESTS = {
    "unknown-parameter": (
        {"parameters": {"username": "bob"}},
        "parameters.username: unknown field",
    ),
    "unknown-request-field": ({"paramaters": {}}, "paramaters: unknown field"),
    "bad-user-name": (
        {"parameters": {"user_name": "bob smith"}},
        "parameters.user_name: must match",
    ),
    "user-name-too-long": (
        {"parameters": {"user_name": "a" * 65}},
        "parameters.user_name: must be at most 64",
    ),
    "user-name-newline": (
        {"parameters": {"user_name": "bob\n"}},
        "parameters.user_name: must match",
    ),
    "user-name-unicode": (
        {"parameters": {"user_name": "b\u00f3b"}},
        "parameters.user_name: must match",
    ),
    "user-name-null": (
        {"parameters": {"user_name": None}},
        "parameters.user_name: must be a string",
    ),
    "user-name-number": (
        {"parameters": {"user_name": 7}},
        "parameters.user_name: must be a string",
    ),
    "flag-not-boolean": (
        {"parameters": {"disable_xml_to_json": "maybe"}},
        "parameters.disable_xml_to_json: must be true or false",
    ),
    "region-unknown": (
        {"parameters": {"regions": "moon-1"}},
        'parameters.regions: "moon-1" is not a region that botocore lists',
    ),
    "region-typo": ({"parameters": {"regions": "us-est-1"}}, 'did you mean "us-east-1"'),
    "region-empty-item": (
        {"parameters": {"regions": "us-east-1,,eu-west-1"}},
        "parameters.regions: item 2 is empty",
    ),
    "regions-span-partitions": (
        {"parameters": {"regions": "us-east-1,cn-north-1"}},
        "the regions span partitions (aws, aws-cn)",
    ),
    "star-in-a-list": (
        {"parameters": {"regions": "us-east-1,*"}},
        "'*' means every region and must stand alone",
    ),
    "parameters-not-object": ({"parameters": ["us-east-1"]}, "parameters: must be an object"),
    "request-not-object": ("us-east-1", "the request must be a JSON object"),
    "secret-without-key-id": (
        {"connection": {"secret_access_key": "x" * 20}},
        "connection.secret_access_key: needs connection.access_key_id",
    ),
    "unknown-connection-field": (
        {"connection": {"password": "x"}},
        "connection.password: unknown field",
    ),
}


@pytest.mark.parametrize(
    ("request_", "expected"), INVALID_REQUESTS.values(), ids=INVALID_REQUESTS.keys()
)
def test_bad_input_names_the_field_and_sends_nothing(
    iam: LocalIAM, request_: object, expected: str
) -> None:
    if isinstance(request_, dict) and "connection" not in request_ and "paramaters" not in request_:
        request_ = {**request_, "connection": iam.connection()}
    mark = iam.mark()

    response = execute(request_)

    assert response["error_code"] == 2
    assert response["result"] is None
    assert response["error_message"].startswith("Invalid input: ")
    assert expected in response["error_message"]
    assert iam.since(mark) == []


def test_every_bad_field_is_reported_at_once(iam: LocalIAM) -> None:
    response = execute(
        {
            "parameters": {"regions": "moon-1", "user_name": "no spaces", "colour": "red"},
            "connection": iam.connection(),
        }
    )
    message = response["error_message"]
    for field in ("parameters.regions", "parameters.user_name", "parameters.colour"):
        assert field in message


def test_a_bad_value_is_not_echoed(iam: LocalIAM) -> None:
    pasted = "wrong-field-pasted-credential-0123456789"
    response = execute({"parameters": {"user_name": pasted + " !"}, "connection": iam.connection()})
    assert response["error_code"] == 2
    assert pasted not in response["error_message"]


def test_plain_http_to_a_remote_host_is_refused(iam: LocalIAM) -> None:
    mark = iam.mark()
    response = execute(
        {
            "parameters": {"user_name": "bob"},
            "connection": iam.connection(endpoint_url="http://iam.example.com"),
        }
    )
    assert response["error_code"] == 2
    assert "is not https" in response["error_message"]
    assert iam.since(mark) == []


def test_an_unreachable_endpoint_is_transient() -> None:
    port = free_port()  # a port that nothing listens on
    connection = {
        "access_key_id": ADMIN_KEY_ID,
        "secret_access_key": ADMIN_SECRET,
        "endpoint_url": f"http://127.0.0.1:{port}",
    }
    response = execute({"parameters": {"user_name": "bob"}, "connection": connection})
    assert response["error_code"] == 4
    assert response["error_message"] == (
        f'CreateAccessKey failed for user "bob": could not connect to the IAM endpoint '
        f"http://127.0.0.1:{port}/ (nothing was sent)"
    )


def test_missing_credentials_are_a_configuration_error(iam: LocalIAM) -> None:
    mark = iam.mark()
    response = execute(
        {"parameters": {"user_name": "bob"}, "connection": {"endpoint_url": iam.url}}
    )
    assert response["error_code"] == 3
    assert response["error_message"].startswith(
        'CreateAccessKey failed for user "bob": no AWS credentials found'
    )
    assert iam.since(mark) == []
