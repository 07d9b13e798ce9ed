"""An error says what it is about once, then why, then the advice, then AWS's request id.

The context (the operation and the user) is attached where the error leaves a block that knows
it, never written into the message by hand: Ansible's IAMErrorHandler said "Failed to Failed to"
when two layers each added theirs.
"""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import EndpointConnectionError

from plugin import execute
from plugin.aws import client_errors
from plugin.contract.errors import WHOLE, ActionError, Category
from tests.support.local_iam import LocalIAM


def test_a_wait_that_ends_says_the_operation_then_iams_words_then_the_wait_then_the_id(
    iam: LocalIAM,
) -> None:
    response = execute(
        {"parameters": {"user_name": "ghost", "wait_for_user": 1}, "connection": iam.connection()}
    )

    assert response["error_code"] == 3
    assert re.fullmatch(
        r'CreateAccessKey failed for user "ghost": NoSuchEntity: The user with name ghost '
        r"cannot be found\. \(waited \d+\.\ds for IAM to show the user; Wait For A New User was "
        r"1 s; every answer was NoSuchEntity, so no key was created\) \(request id \w+\)",
        response["error_message"],
    ), response["error_message"]


def test_a_step_that_names_itself_is_not_also_named_by_the_invocation() -> None:
    vault = client_errors.context("bob", "Hand Secret To Vault", "before any key was created")
    with (
        pytest.raises(ActionError) as raised,
        client_errors.about(client_errors.context("bob")),
        client_errors.about(vault),  # the inner block, the step's own
    ):
        raise EndpointConnectionError(endpoint_url="https://ssm.invalid")

    assert str(raised.value) == (
        'Hand Secret To Vault failed for user "bob", before any key was created: could not '
        "connect to the endpoint https://ssm.invalid (nothing was sent)"
    )
    assert raised.value.category is Category.TRANSIENT


def test_an_error_that_names_its_own_subject_leaves_the_invocation_as_it_is() -> None:
    left = "key AKIAEXAMPLE was created but cannot be delivered, and deleting it failed"
    with pytest.raises(ActionError) as raised, client_errors.about(client_errors.context("bob")):
        raise ActionError(left, Category.TRANSIENT, about=WHOLE)

    assert str(raised.value) == left


def test_a_check_says_it_is_a_check_and_the_user_named_none() -> None:
    with (
        pytest.raises(ActionError) as raised,
        client_errors.about(client_errors.context(None, client_errors.CHECK_ONLY)),
    ):
        raise ActionError("internal error (a bug)", Category.INTERNAL)

    assert str(raised.value) == (
        "Check Only failed for the signing identity: internal error (a bug)"
    )
