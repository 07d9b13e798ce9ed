"""The SES SMTP password (version 4) of a secret access key, as AWS documents its derivation.

An HMAC-SHA256 chain from "AWS4" + the secret over a fixed date, the region, "ses",
"aws4_request" and "SendRawEmail"; then the version byte 0x04 and base64. Terraform's
aws_iam_access_key calls it ses_smtp_password_v4. It is a secret as much as the key is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_DATE = "11111111"
_SERVICE = "ses"
_TERMINAL = "aws4_request"
_MESSAGE = "SendRawEmail"
_VERSION = b"\x04"


def ses_smtp_password_v4(secret_access_key: str, region: str) -> str:
    """The SMTP password that signs in to SES's SMTP endpoint in `region` with this key."""
    signature = ("AWS4" + secret_access_key).encode()
    for part in (_DATE, region, _SERVICE, _TERMINAL, _MESSAGE):
        signature = hmac.new(signature, part.encode(), hashlib.sha256).digest()
    return base64.b64encode(_VERSION + signature).decode("ascii")
