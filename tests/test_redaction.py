"""The redaction filter masks secrets by field name and by value, in messages and tracebacks."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import pytest

from plugin.runtime import redaction
from plugin.runtime.deadline import Deadline, call_within

SECRET = "unit-test-secret-value-Kx93Lp0Qz"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redaction.redactor())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_secret_fields_come_from_the_schemas() -> None:
    names = set(redaction.redactor_field_names())
    assert {"SecretAccessKey", "secret_access_key", "session_token", "SessionToken"} <= names
    assert "AccessKeyId" not in names
    assert "access_key_id" not in names


FORMS = {
    "xml": f"b'<AccessKey><SecretAccessKey>{SECRET}</SecretAccessKey></AccessKey>'",
    "json": f'{{"SecretAccessKey": "{SECRET}", "Status": "Active"}}',
    "python-repr": f"{{'SecretAccessKey': '{SECRET}'}}",
    "query": f"Action=X&secret_access_key={SECRET}&Version=1",
    "botocore-name": f"aws_secret_access_key={SECRET}",
    "header-line": f"x-amz-security-token:{SECRET}\nhost:iam",
    "header-dict": f"{{'X-Amz-Security-Token': b'{SECRET}'}}",
    "sts-answer": f"<Credentials><SessionToken>{SECRET}</SessionToken></Credentials>",
}


@pytest.mark.parametrize("text", FORMS.values(), ids=FORMS.keys())
def test_masks_a_secret_field_in_every_form(
    captured: tuple[logging.Logger, io.StringIO], text: str
) -> None:
    logger, stream = captured
    logger.debug("Response body:\n%s", text)
    assert SECRET not in stream.getvalue()
    assert redaction.MASK in stream.getvalue()


def test_masks_a_guarded_value_anywhere_then_forgets_it(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with redaction.redactor().guarding(SECRET):
        logger.info("free text %s in the middle", SECRET)
    assert SECRET not in stream.getvalue()
    with redaction.redactor().guarding() as guard:
        guard("learnt-inside-the-block-0001")
        logger.info("learnt-inside-the-block-0001")
    assert "learnt-inside-the-block-0001" not in stream.getvalue()
    assert "learnt-inside-the-block-0001" not in redaction.redactor()._current_values()


def test_a_guarded_value_masks_only_its_own_invocations_records(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """Two tenants at once: one guards a short value; the other's lines (and the server's own,
    written outside any invocation) are left whole, while its own records are masked."""
    logger, stream = captured
    inside = threading.Event()
    done = threading.Event()

    def short_secret_tenant() -> None:
        with redaction.redactor().guarding("A") as guard:
            guard("e")
            inside.set()
            done.wait(10)
            logger.info("tenant-one says A and e")

    tenant = threading.Thread(target=short_secret_tenant)
    tenant.start()
    assert inside.wait(10)
    with redaction.redactor().guarding(SECRET):
        logger.info("created access key AKIAIOSFODNN7EXAMPLE for tenant-two")
        call_within(lambda: logger.info("worker of tenant-two: %s", SECRET), Deadline(10))
    logger.warning("the caller hung up before the answer: deleted key AKIAIOSFODNN7EXAMPLE")
    done.set()
    tenant.join(10)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "created access key AKIAIOSFODNN7EXAMPLE for tenant-two"
    assert lines[1] == "worker of tenant-two: ***"
    assert lines[2] == "the caller hung up before the answer: deleted key AKIAIOSFODNN7EXAMPLE"
    # its own line masks its short values where they stand alone, not inside words (issue 20)
    assert lines[3] == "tenant-one says *** and ***"


def test_masks_a_traceback(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    with redaction.redactor().guarding(SECRET):
        try:
            raise RuntimeError(f"boom {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    assert "RuntimeError: boom ***" in stream.getvalue()
    assert SECRET not in stream.getvalue()


def test_leaves_ordinary_text_alone(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("created access key %s for %s", "AKIAIOSFODNN7EXAMPLE", "bob")
    assert stream.getvalue() == "created access key AKIAIOSFODNN7EXAMPLE for bob\n"
