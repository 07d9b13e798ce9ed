"""`unseal`: open what Seal Secret To sealed, with what the package installs (no `age` program).

`--new-identity FILE` makes an identity to seal to: written to a new file with mode 0600 (never
overwriting one), its recipient (age1...) printed alone on stdout. `--identity FILE` reads a
step's result (its JSON, every Sealed... field opened in place; or `execute`'s whole response,
whose result is taken) or one sealed text on stdin and prints it opened: the secret goes to the
person who holds the identity, nowhere else.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from plugin.contract.errors import ActionError, Category

from . import seal

# Each sealed field of a result, and the field it opens to.
OPENED_AS = {
    "SealedSecretAccessKey": "SecretAccessKey",
    "SealedSesSmtpPasswordV4": "SesSmtpPasswordV4",
}


def make_identity(path: str) -> str:
    """Write a new identity to `path` (0600, a new file only); return its recipient."""
    identity, recipient = _pyrage(seal.new_identity)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise ActionError(
            f"unseal: cannot create {path}: {error.strerror}", Category.INVALID_INPUT
        ) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as stream:
        stream.write(f"# public key: {recipient}\n{identity}\n")
    return str(recipient)


def open_text(text: str, identity_path: str) -> str:
    """A step's result with its sealed fields opened, or one sealed text opened."""
    try:
        with open(identity_path, encoding="ascii") as stream:
            identity = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "not an age identity file"
        raise ActionError(
            f"unseal: cannot read {identity_path}: {why}", Category.INVALID_INPUT
        ) from None
    stripped = text.strip()
    if not stripped.startswith("{"):
        return _opened(stripped, identity) + "\n"
    try:
        document: Any = json.loads(stripped)
    except ValueError:
        raise ActionError(
            "unseal: stdin is neither a step's result nor sealed text", Category.INVALID_INPUT
        ) from None
    document = _result_of(document)
    key = document.get("AccessKey", {}) if isinstance(document, dict) else {}
    found = [name for name in OPENED_AS if isinstance(key.get(name), str)]
    if not found:
        raise ActionError("unseal: the result carries no sealed field", Category.INVALID_INPUT)
    for name in found:
        key[OPENED_AS[name]] = _opened(key.pop(name), identity)
    return json.dumps(document, indent=2) + "\n"


def _result_of(document: Any) -> Any:
    """The step's result: `document` itself, or the `result` of execute's whole response
    ({"error_code", "result", "error_message"}), as an engine's log keeps it."""
    if not (isinstance(document, dict) and "result" in document and "error_code" in document):
        return document
    if document["error_code"] != 0:
        raise ActionError(
            f"unseal: the response is an error (code {document['error_code']}), with no key",
            Category.INVALID_INPUT,
        )
    return document["result"]


def _opened(sealed: str, identity: str) -> str:
    try:
        return str(_pyrage(lambda: seal.open_sealed(sealed, identity)))
    except ActionError:
        raise
    except Exception:
        raise ActionError(
            "unseal: it cannot be opened with this identity (sealed to another recipient, or "
            "not age text)",
            Category.REJECTED,
        ) from None


def _pyrage(call: Any) -> Any:
    try:
        return call()
    except ImportError:
        raise ActionError(f"unseal needs pyrage ({seal.EXTRA})", Category.REJECTED) from None


def main(new_identity: str | None, identity: str | None) -> int:
    """The command: one of the two modes."""
    if new_identity:
        print(make_identity(new_identity))
        return 0
    if not identity:
        raise ActionError(
            "unseal: give --identity FILE or --new-identity FILE", Category.INVALID_INPUT
        )
    sys.stdout.write(open_text(sys.stdin.read(), identity))
    return 0
