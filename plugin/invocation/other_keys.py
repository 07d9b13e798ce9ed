"""Report The User's Other Keys: each key's id, status and CreateDate as IAM wrote them, and
when, with which service and in which region it was last used, for the next step of a rotation.

Read before the key is created (nothing to undo if it fails; the key made afterwards and any
key the action deletes are left out by the caller). Never a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plugin.aws import convert
from plugin.aws.client_errors import access_denied, aws_reason, denied

from . import limit

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

_EVENT = "before-parse.iam.GetAccessKeyLastUsed"
_BODY = "iam-create-access-key.last-used-body"


def report(client: IAMClient, user_name: str | None) -> list[dict[str, Any]]:
    """The user's keys now, each with its LastUsed (IAM's AccessKeyLastUsed, as IAM wrote it:
    LastUsedDate only once used; ServiceName and Region N/A until then)."""
    client.meta.events.register(_EVENT, _keep_body, unique_id=_BODY)
    try:
        return _read(client, user_name)
    except ClientError as error:
        if not access_denied(error):
            raise
        raise denied(
            error,
            f"reading the user's other keys: {aws_reason(error)} (Report The User's Other Keys "
            "needs iam:ListAccessKeys and iam:GetAccessKeyLastUsed); nothing was created",
        ) from None


def _read(client: IAMClient, user_name: str | None) -> list[dict[str, Any]]:
    found = []
    for key in limit.keys_of(client, user_name, quietly=False) or []:
        answer: dict[str, Any] = client.get_access_key_last_used(AccessKeyId=key.access_key_id)  # type: ignore[assignment]
        last_used = convert.last_used(answer.pop(_BODY, b""))
        if not last_used:  # an IAM-compatible endpoint whose body could not be read
            parsed = answer.get("AccessKeyLastUsed", {})
            last_used = {name: _text(value) for name, value in parsed.items()}
        found.append(
            {
                "AccessKeyId": key.access_key_id,
                "Status": key.status,
                "CreateDate": key.create_date,
                "LastUsed": last_used,
            }
        )
    return found


def _keep_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """botocore hook: keep the answer's bytes (botocore turns LastUsedDate into a datetime)."""
    if int(response_dict.get("status_code", 500)) < 300:
        customized_response_dict[_BODY] = bytes(response_dict["body"])


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
