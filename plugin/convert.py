"""IAM's CreateAccessKey XML to the documented JSON shape, every value IAM's own string."""

from __future__ import annotations

from typing import Any
from xml.parsers.expat import ExpatError

from .errors import ActionError, Category

_ROOT = "CreateAccessKeyResponse"
_RESULT = "CreateAccessKeyResult"


def access_key_document(body: bytes, head: str) -> dict[str, Any]:
    """Parse the response body into {"AccessKey": {...}}; an unreadable body is an error.

    `head` starts the error message ("CreateAccessKey failed for user ..."). Messages never quote
    the body: it carries the secret.
    """
    import xmltodict

    try:
        # Entities off: a hostile endpoint must not expand a billion laughs in this process.
        document = xmltodict.parse(body, disable_entities=True)
    except (ExpatError, ValueError):
        raise _unreadable(head, "it is not well-formed XML") from None
    root = document.get(_ROOT) if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise _unreadable(head, f"its root element is not {_ROOT}")
    result = root.get(_RESULT)
    access_key = result.get("AccessKey") if isinstance(result, dict) else None
    if not isinstance(access_key, dict):
        raise _unreadable(head, f"it has no {_RESULT}/AccessKey element")
    return {"AccessKey": dict(access_key)}


def _unreadable(head: str, why: str) -> ActionError:
    return ActionError(
        f"{head}: IAM's answer could not be read ({why}); IAM may have created a key all the "
        "same: check the user's access keys",
        Category.TRANSIENT,
    )
