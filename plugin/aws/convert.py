"""IAM's CreateAccessKey XML to the documented JSON shape, every value IAM's own string."""

from __future__ import annotations

import re
from typing import Any
from xml.parsers.expat import ExpatError

from plugin.contract import validation

_ROOT = "CreateAccessKeyResponse"
_RESULT = "CreateAccessKeyResult"


class UnreadableAnswer(Exception):
    """IAM answered 2xx, but not with a complete access key. IAM may have created one."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def access_key_document(body: bytes) -> dict[str, Any]:
    """Parse the response body into a checked {"AccessKey": {...}}, or raise UnreadableAnswer.

    The reasons never quote the body: it carries the secret.
    """
    try:
        body.decode("utf-8")  # the raw mode returns it as text: check before it is delivered
    except UnicodeDecodeError:
        raise UnreadableAnswer("it is not UTF-8") from None
    try:
        document = _parse(body)
    except (ExpatError, ValueError):
        raise UnreadableAnswer("it is not well-formed XML") from None
    root = document.get(_ROOT) if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise UnreadableAnswer(f"its root element is not {_ROOT}")
    result = root.get(_RESULT)
    access_key = result.get("AccessKey") if isinstance(result, dict) else None
    if not isinstance(access_key, dict):
        raise UnreadableAnswer(f"it has no {_RESULT}/AccessKey element")
    if "SecretAccessKey" not in access_key:  # the result may be sealed; IAM's answer never is
        raise UnreadableAnswer("it has no SecretAccessKey")
    document = {"AccessKey": dict(access_key)}
    problems = validation.problems("output", document, "result")
    if problems:
        raise UnreadableAnswer("it is not a complete access key: " + "; ".join(problems))
    return document


def create_dates(body: bytes) -> dict[str, str]:
    """Key id to CreateDate, as IAM wrote them in a ListAccessKeys answer ({} if unreadable)."""
    try:
        document = _parse(body)
        members = document["ListAccessKeysResponse"]["ListAccessKeysResult"]["AccessKeyMetadata"]
        members = members["member"] if isinstance(members, dict) else []
    except (ExpatError, ValueError, KeyError, TypeError):
        return {}
    if isinstance(members, dict):
        members = [members]
    return {
        str(m["AccessKeyId"]): str(m["CreateDate"])
        for m in members
        if isinstance(m, dict) and "AccessKeyId" in m and "CreateDate" in m
    }


def key_id_of(body: bytes | str) -> str | None:
    """The AccessKeyId in a CreateAccessKey answer, found without parsing it (it may be one
    that could not be read, or IAM's raw XML returned as text)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    found = _KEY_ID.search(raw)
    return found.group(1).decode() if found else None


_KEY_ID = re.compile(rb"<(?:[\w.-]+:)?AccessKeyId>(\w+)</")


def _parse(body: bytes) -> Any:
    """IAM's XML as a dict.

    Entities off: a hostile endpoint must not expand a billion laughs in this process.
    Attributes off: IAM's answers have none but the namespace, which is not returned.
    Elements by their local names: some IAM-compatible endpoints prefix them (ns2:...).
    """
    import xmltodict

    return xmltodict.parse(
        body, disable_entities=True, xml_attribs=False, postprocessor=_local_name
    )


def _local_name(path: Any, name: str, value: Any) -> tuple[str, Any]:
    """xmltodict postprocessor: `ns2:AccessKeyId` is read as `AccessKeyId`."""
    return name.rpartition(":")[2], value


_LAST_USED_FIELDS = ("LastUsedDate", "ServiceName", "Region")


def last_used(body: bytes) -> dict[str, str]:
    """A GetAccessKeyLastUsed answer's AccessKeyLastUsed, as IAM wrote it ({} if unreadable)."""
    try:
        document = _parse(body)
        found = document["GetAccessKeyLastUsedResponse"]["GetAccessKeyLastUsedResult"][
            "AccessKeyLastUsed"
        ]
    except (ExpatError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {name: str(found[name]) for name in _LAST_USED_FIELDS if found.get(name) is not None}
