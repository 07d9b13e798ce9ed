"""Translate what boto3 and botocore raise into the product's one error type.

Messages are built from AWS's error code and message and from the exception's type, never from
the exception's text at large: some botocore messages quote the response body, which here
carries a secret. Failures after which IAM may have acted are handled in create.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore import exceptions as boto

from plugin.contract.errors import About, ActionError, Category

from .clients import AnswerTooLarge
from .services import where

OPERATION = "CreateAccessKey"
# IAM refuses these before it acts: safe to try again after a pause.
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
# These, and the above, say that AWS is overloaded or failed: a later try may work.
TRANSIENT_CODES = THROTTLING_CODES | {
    "ServiceUnavailable",
    "ServiceFailure",
    "InternalFailure",
    "InternalError",
    "RequestTimeout",
}


class NothingCreated(boto.ClientError):
    """A try whose answer did not come, after which IAM showed no such user: IAM's own
    NoSuchEntity, proof that the try created nothing. `cut` says what cut the try short."""

    def __init__(self, refusal: boto.ClientError, cut: str) -> None:
        super().__init__(refusal.response, refusal.operation_name)
        self.cut = cut


def aws_code(error: Exception) -> str:
    """AWS's error code, for a ClientError ("" for anything else)."""
    if not isinstance(error, boto.ClientError):
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


def access_denied(error: Exception) -> bool:
    """Whether AWS refused the caller a permission (IAM's and the JSON services' spelling)."""
    return aws_code(error) in ("AccessDenied", "AccessDeniedException")


def denied(error: Exception, message: str) -> ActionError:
    """An AccessDenied as the step's error: `message` names what the option needs; nothing to
    retry."""
    return ActionError(message, Category.REJECTED, aws_code=aws_code(error))


def http_status(error: Exception) -> int:
    """The HTTP status AWS answered with, for a ClientError (0 for anything else)."""
    if not isinstance(error, boto.ClientError):
        return 0
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def aws_reason(error: Exception) -> str:
    """ "Code: Message" for a ClientError (AWS's own words, never a body); else the type."""
    if isinstance(error, AnswerTooLarge):
        return f"an answer that {error.why}, not read"
    if not isinstance(error, boto.ClientError):
        return type(error).__name__
    text = str(error.response.get("Error", {}).get("Message", "")).strip()
    code = aws_code(error) or "Unknown"
    return f"{code}: {text}" if text else code


def subject(user_name: str | None) -> str:
    return f'user "{user_name}"' if user_name else "the signing identity"


CHECK_ONLY = "Check Only"


def context(user_name: str | None, operation: str = OPERATION, phase: str = "") -> About:
    """What every error of an invocation is about (a check names itself, not the create it
    does not make; a step before the create names itself and that phase)."""
    return About(operation, subject(user_name), phase)


def testing_the_connection(operation: str) -> About:
    """What the errors of a connection test are about: the call it makes, for no user."""
    return About(operation, purpose="testing the connection")


def may_exist(user_name: str | None) -> str:
    """The advice that ends a message after which IAM may have created a key."""
    who = f"--user-name {user_name}" if user_name else "(for the signing identity)"
    return (
        f"; IAM may have created a key all the same: check with aws iam list-access-keys {who} "
        "and delete a key that nobody received"
    )


@contextlib.contextmanager
def about(concerning: About | str) -> Iterator[None]:
    """The boundary of a block that signs in to AWS or calls it: anything raised within it
    leaves as an ActionError about `concerning` (one that already says what it is about keeps
    its own). `from None`: the cause may quote a response body or a credential."""
    try:
        yield
    except Exception as error:
        raise translate(error, concerning) from None


def translate(
    error: Exception, concerning: About | str | None = None, advice: str = ""
) -> ActionError:
    """One ActionError for anything raised while signing in to AWS or calling it, about
    `concerning` ("CreateAccessKey failed for user "bob"") unless it says what it is about
    itself, with `advice` after the reason."""
    if isinstance(error, ActionError):
        return error.within(concerning, advice)
    code = request_id = None
    category = Category.REJECTED
    if isinstance(error, boto.ClientError):
        code = aws_code(error) or "Unknown"
        request_id = error.response.get("ResponseMetadata", {}).get("RequestId")
        transient = code in TRANSIENT_CODES or http_status(error) >= 500
        category = Category.TRANSIENT if transient else Category.REJECTED
        reason = aws_reason(error)
    elif isinstance(error, boto.NoCredentialsError):
        reason = (
            "no AWS credentials found (give them in the connection, or set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
        )
    elif isinstance(error, boto.PartialCredentialsError):
        reason = "the AWS credentials are incomplete"
    elif isinstance(error, boto.ProfileNotFound):
        reason = str(error)
    elif isinstance(error, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
        reason, category = (
            f"could not connect to {where(error)} (nothing was sent)",
            Category.TRANSIENT,
        )
    elif isinstance(error, boto.ReadTimeoutError):
        reason, category = f"{where(error)} did not answer in time", Category.TRANSIENT
    elif isinstance(error, boto.ConnectionClosedError):
        reason = f"{where(error)} closed the connection before it answered"
        category = Category.TRANSIENT
    elif isinstance(error, AnswerTooLarge):
        reason = (
            f"the answer of {where(error)} {error.why} (none of its own does), and was not read"
        )
        category = Category.TRANSIENT
    elif isinstance(error, boto.BotoCoreError):
        reason = f"{type(error).__name__} (run with --debug for details)"
    else:
        reason = f"internal error {type(error).__name__} (run with --debug for details)"
        category = Category.INTERNAL
    return ActionError(
        reason, category, aws_code=code, request_id=request_id, about=concerning, advice=advice
    )
