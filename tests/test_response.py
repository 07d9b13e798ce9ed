"""One engine answer, read alike by every door: the Python function's mapping, what `execute`
prints, what `run` says and exits with, and the Shuffle app's failure."""

from __future__ import annotations

import json
import uuid

import pytest

from plugin import execute
from plugin.hosts.shuffle import app
from tests.support.cli import run_cli
from tests.support.local_iam import LocalIAM


def test_a_refusal_is_the_same_answer_at_every_door(
    iam: LocalIAM, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user name IAM would refuse: refused before anything is sent (code 2), in one message
    that every door passes on as the engine gave it."""
    ghost = f"not a user {uuid.uuid4().hex[:8]}"  # spaces: outside IAM's user-name pattern
    request = {"parameters": {"user_name": ghost}, "connection": iam.connection()}
    before = len(iam.actions())

    answer = execute(request)
    assert set(answer) == {"error_code", "result", "error_message"}
    assert (answer["error_code"], answer["result"]) == (2, None)
    message = answer["error_message"]
    assert message.startswith("Invalid input: parameters.user_name")
    assert ghost not in message  # the field's path, never its value

    printed = run_cli("execute", env=cli_env, stdin=json.dumps(request).encode())
    assert printed.returncode == 2
    assert json.loads(printed.stdout) == answer
    assert printed.stderr == f"iam-create-access-key: error: {message}\n"

    said = run_cli("run", "--user-name", ghost, env=cli_env)
    assert (said.returncode, said.stdout) == (2, "")
    assert said.stderr == f"iam-create-access-key: error: {message}\n"

    monkeypatch.setenv("AWS_ENDPOINT_URL", iam.url)  # how an operator points the app
    connection = iam.connection()
    fields = {"user_name": ghost, **{k: connection[k] for k in app.AUTHENTICATION[:2]}}
    assert app.create_access_key(fields, {}) == {
        "success": False,
        "reason": message,
        "error_code": 2,
    }
    assert len(iam.actions()) == before  # no door sent anything
