"""The code says what IAM said: a user IAM never showed is code 3, whatever cut the wait.

Every answer NoSuchEntity (the tries, and the listing after a try whose answer did not come)
proves that no key was created: the step fails with code 3 and says how long it waited and
what ended the wait. "IAM may have created a key" (code 4) is kept for answers that really
leave it open. Each test cuts the wait at a different point: the wait window, the step's
timeout between tries, the step's timeout during a try, a socket read timeout, a gRPC
deadline.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from plugin import execute
from tests.support import fault_proxy as faults
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import LocalIAM

NO_SUCH_USER = faults.refuse("NoSuchEntity", status=404)
HEAD = 'CreateAccessKey failed for user "{user}": NoSuchEntity: '
AN_ANSWER = b"<CreateAccessKeyResponse>" + b" " * 400 + b"</CreateAccessKeyResponse>"


def slow_no_such_user(seconds: float) -> faults.Fault:
    """IAM that answers NoSuchEntity, but only after `seconds` (a slow, loaded IAM)."""
    return faults.Fault(
        f"NoSuchEntity after {seconds:g}s",
        forward=False,
        status=404,
        code="NoSuchEntity",
        hold=seconds,
    )


def run(
    iam: LocalIAM, proxy: FaultProxy, timeout: float | None, **parameters: Any
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "parameters": parameters,
        "connection": iam.connection(endpoint_url=proxy.url),
    }
    if timeout is not None:
        request["timeout"] = timeout
    return execute(request)


def waited(message: str) -> float:
    found = re.search(r"\(waited (\d+\.\d)s for IAM to show the user; ", message)
    assert found, message
    return float(found.group(1))


def time_ran_out(message: str, seconds: int) -> tuple[float, float, float]:
    """The step's time as the message tells it: what was left, the wait and the try that would
    not have fitted in it (so it says what is true, not the whole step's time)."""
    found = re.search(
        rf"; the step's time ran out first: (\d+\.\d) s of its {seconds} s were left, too few "
        r"to wait (\d+\.\d) s and try again \(a try needs (\d+\.\d) s\)[;)]",
        message,
    )
    assert found, message
    left, wait, needed = (float(group) for group in found.groups())
    assert left < wait + needed + 0.1, message  # rounded to tenths
    assert waited(message) + left <= seconds + 0.1, message
    return left, wait, needed


def assert_no_key_for_a_user_iam_never_showed(response: dict[str, Any], user: str) -> str:
    assert response["error_code"] == 3, response["error_message"]
    message: str = response["error_message"]
    assert message.startswith(HEAD.format(user=user)), message
    assert "may have created" not in message
    assert "; every answer was NoSuchEntity, so no key was created)" in message, message
    return message


def test_the_wait_window_ends_the_wait(iam: LocalIAM, proxy: FaultProxy) -> None:
    proxy.inject("CreateAccessKey", *[NO_SUCH_USER] * 50)

    response = run(iam, proxy, None, user_name="ghost-window", wait_for_user=1)

    message = assert_no_key_for_a_user_iam_never_showed(response, "ghost-window")
    assert "; Wait For A New User was 1 s; " in message
    assert 0.5 <= waited(message) <= 5.0  # the 1 s window and a try on a busy machine, not 10 s


def test_the_steps_timeout_ends_the_wait_between_tries(iam: LocalIAM, proxy: FaultProxy) -> None:
    """IAM itself (moto) answers NoSuchEntity for a user that does not exist: the issue's
    `run --user-name ghost --timeout 5`."""
    response = run(iam, proxy, 5, user_name="ghost", wait_for_user=60)

    message = assert_no_key_for_a_user_iam_never_showed(response, "ghost")
    time_ran_out(message, 5)
    assert 1.0 <= waited(message) <= 5.0


def test_the_steps_timeout_ends_a_try_in_flight(iam: LocalIAM, proxy: FaultProxy) -> None:
    """The last try's answer does not come before the step's time is up; the listing that
    follows answers NoSuchEntity (moto: the user does not exist), so nothing was created."""
    # A 12 s step reads for 4 s at most and keeps 4 s to reconcile: two tries of 2.5 s each
    # bring the third to a moment where the step's time, not the read timeout, ends it. On a
    # loaded machine the pauses and tries take longer and the step's time may end the second
    # try already (seen in CI): either way a try in flight, then the listing, then nothing more.
    proxy.inject(
        "CreateAccessKey", slow_no_such_user(2.5), slow_no_such_user(2.5), slow_no_such_user(30)
    )
    mark = proxy.mark()

    response = run(iam, proxy, 12, user_name="ghost-in-flight", wait_for_user=60)

    message = assert_no_key_for_a_user_iam_never_showed(response, "ghost-in-flight")
    time_ran_out(message, 12)
    assert (
        " s); the last try got no answer (the request was sent but IAM's answer did not arrive "
        "in the time allowed); "
    ) in message
    sent = [exchange.action for exchange in proxy.since(mark)]
    tries = len(sent) - 1
    assert tries in (2, 3), sent
    assert sent == ["CreateAccessKey"] * tries + ["ListAccessKeys"]


def test_a_socket_read_timeout_ends_the_wait(iam: LocalIAM, proxy: FaultProxy) -> None:
    """With a 15 s step, each read waits 5 s and the try may run 10 s: IAM answering after 40 s
    is a read timeout, and with no wait allowed that one try is all. (With a 9 s step the try's
    own 6 s left 3 s beside the read's 3 s; a loaded CI machine spent them before the send, and
    the step's time ended the try first.)"""
    proxy.inject("CreateAccessKey", slow_no_such_user(40))

    response = run(iam, proxy, 15, user_name="ghost-read", wait_for_user=0)

    assert response["error_code"] == 3, response["error_message"]
    message = response["error_message"]
    assert message.startswith(HEAD.format(user="ghost-read"))
    assert (
        " (the request was sent but timed out waiting for IAM's answer; IAM then showed no "
        "such user, so no key was created)"
    ) in message


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (
            faults.answer("half an answer, then 40 s of nothing", AN_ANSWER, break_body=40),
            "the request was sent but timed out waiting for IAM's answer",
        ),
        (
            faults.answer("half an answer, then a reset", AN_ANSWER, break_body=0),
            "the request was sent but the connection was closed before IAM's answer arrived",
        ),
    ],
    ids=["stalled", "reset"],
)
def test_an_answer_that_breaks_while_it_is_read_is_said_as_such(
    iam: LocalIAM, proxy: FaultProxy, fault: faults.Fault, said: str
) -> None:
    """Half of IAM's answer, then nothing past the 5 s read of a 15 s step, or a reset: what
    botocore itself says of a broken answer, the action says too (the answer is read within a
    limit of its own, after botocore's send)."""
    proxy.inject("CreateAccessKey", fault)

    response = run(iam, proxy, 15, user_name="ghost-broken", wait_for_user=0)

    assert response["error_code"] == 3, response["error_message"]
    assert (
        f" ({said}; IAM then showed no such user, so no key was created)"
        in (response["error_message"])
    )


def test_may_have_created_is_kept_for_a_user_that_exists(iam: LocalIAM, proxy: FaultProxy) -> None:
    """The same lost answers for a user IAM does show: IAM did act, each listing finds the key
    a lost try made and deletes it, and the step stays code 4 (a retry may work). A 12 s step
    keeps 4 s to list and delete (a 6 s step's 2 s ran out on CI's loaded machine)."""
    user = iam.new_user()
    proxy.inject("CreateAccessKey", *[faults.hold_after_forward(30)] * 3)

    response = run(iam, proxy, 12, user_name=user, wait_for_user=0)

    assert response["error_code"] == 4, response["error_message"]
    assert "NoSuchEntity" not in response["error_message"]
    assert "none is left" in response["error_message"]
    assert iam.key_ids(user) == []


def test_a_grpc_deadline_ends_the_wait(iam: LocalIAM) -> None:
    """The issue's gRPC call: no `timeout` field, the call's own 5 s deadline (the server ends
    the step half a second before it), moto's NoSuchEntity for a user that does not exist."""
    from tests.support.grpc_plugin import PluginProcess, execute_request

    server = PluginProcess()
    try:
        codes = []
        for attempt in range(3):
            user = f"ghost-grpc-{attempt}"
            response = server.stub().ExecuteAction(
                execute_request({"user_name": user}, iam.connection()), timeout=5
            )
            assert response.error_message.startswith(HEAD.format(user=user))
            assert "may have created" not in response.error_message
            assert "; every answer was NoSuchEntity, so no key was created)" in (
                response.error_message
            )
            codes.append(response.error_code)
        assert codes == [3, 3, 3]
    finally:
        server.stop()
