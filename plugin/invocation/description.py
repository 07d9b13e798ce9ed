"""Description: the user tag the IAM console shows as an access key's description (key: the
access key id, value: the words), which no API, CLI or Terraform field sets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from plugin.aws.client_errors import access_denied, aws_reason, denied

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

log = logging.getLogger(__name__)


def label(client: IAMClient, user_name: str, key_id: str, value: str) -> None:
    """Tag the user with the key's description, as the console does."""
    try:
        client.tag_user(UserName=user_name, Tags=[{"Key": key_id, "Value": value}])
    except ClientError as error:
        if not access_denied(error):
            raise
        raise denied(
            error,
            f"tagging its description: {aws_reason(error)} (Description needs iam:TagUser on "
            "the user)",
        ) from None
    log.info("described key %s on user %s (tag %s)", key_id, user_name, key_id)


def unlabel(client: IAMClient, user_name: str, key_id: str) -> None:
    """Remove the description of a key that is gone (UntagUser of an absent tag is no error)."""
    client.untag_user(UserName=user_name, TagKeys=[key_id])
