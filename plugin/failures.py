"""Translate what boto3 and botocore raise into the product's one error type.

Messages are built from AWS's error code and message and from the exception's type, never from
the exception's text at large: some botocore messages quote the response body, which here
carries a secret. Failures after which IAM may have acted are handled in create.py.
"""

from __future__ import annotations

from botocore import exceptions as boto

from .errors import ActionError, Category

OPERATION = "CreateAccessKey"
# IAM answers these before it acts, or they say that it is overloaded: a later try may work.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceFailure",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
    }
)


def subject(user_name: str | None) -> str:
    return f'user "{user_name}"' if user_name else "the signing identity"


def headline(user_name: str | None) -> str:
    """How every error message of an invocation starts."""
    return f"{OPERATION} failed for {subject(user_name)}"


def may_exist(user_name: str | None) -> str:
    """The advice that ends a message after which IAM may have created a key."""
    who = f"--user-name {user_name}" if user_name else "(for the signing identity)"
    return (
        f"; IAM may have created a key all the same: check with aws iam list-access-keys {who} "
        "and delete a key that nobody received"
    )


def translate(error: Exception, head: str) -> ActionError:
    """One ActionError for anything raised while signing in to AWS or calling it.

    `head` starts the message: "CreateAccessKey failed for user "bob"".
    """
    if isinstance(error, ActionError):
        if not error.message.startswith(head):
            error.message = f"{head}: {error.message}"
        return error
    if isinstance(error, boto.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        text = str(details.get("Message", "")).strip()
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        request_id = error.response.get("ResponseMetadata", {}).get("RequestId")
        transient = code in TRANSIENT_CODES or status >= 500
        message = f"{head}: {code}: {text}" if text else f"{head}: {code}"
        category = Category.TRANSIENT if transient else Category.REJECTED
        return ActionError(message, category, aws_code=code, request_id=request_id)
    if isinstance(error, boto.NoCredentialsError):
        return ActionError(
            f"{head}: no AWS credentials found (give them in the connection, or set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
            Category.REJECTED,
        )
    if isinstance(error, boto.PartialCredentialsError):
        return ActionError(f"{head}: the AWS credentials are incomplete", Category.REJECTED)
    if isinstance(error, boto.ProfileNotFound):
        return ActionError(f"{head}: {error}", Category.REJECTED)
    if isinstance(error, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
        return ActionError(
            f"{head}: could not connect to the IAM endpoint (nothing was sent; tried "
            "several times)",
            Category.TRANSIENT,
        )
    if isinstance(error, boto.BotoCoreError):
        return ActionError(
            f"{head}: {type(error).__name__} (run with --debug for details)", Category.REJECTED
        )
    return ActionError(
        f"{head}: internal error {type(error).__name__} (run with --debug for details)",
        Category.INTERNAL,
    )
