"""Seal the new secret to an age recipient: only the holder of the matching identity reads it.

Every peer returns the secret in clear into whatever stores a step's output (Terraform's state,
a workflow engine's execution history). Sealed, what is stored there is useless to anyone else;
`age -d -i KEY` opens it. pyrage (the `seal` extra) is imported only when sealing is asked for.
"""

from __future__ import annotations

from typing import Any

EXTRA = "pip install 'iam-create-access-key[seal]'"


def recipient_problem(text: str) -> str | None:
    """Why `text` is not a usable age X25519 recipient, or None when it is."""
    try:
        _recipient(text)
    except ImportError:
        return f"sealing needs pyrage ({EXTRA})"
    except Exception:
        return "is not a valid age X25519 recipient (age1...)"
    return None


def seal(secret: str, recipient: str) -> str:
    """The secret, encrypted to `recipient`, as ASCII-armored age text."""
    import pyrage

    sealed: bytes = pyrage.encrypt(secret.encode(), [_recipient(recipient)], armored=True)
    return sealed.decode("ascii")


def _recipient(text: str) -> Any:
    import pyrage

    return pyrage.x25519.Recipient.from_str(text)
