"""An age X25519 recipient (the Seal Secret To parameter): read it, or say why it is not one.

The request checks it before anything is sent (request.py); delivery seals to it (seal.py).
pyrage (the `seal` and `demo` extras) is imported only when a recipient is read.
"""

from __future__ import annotations

from typing import Any

EXTRA = "pip install 'iam-create-access-key[seal]'"


def recipient_problem(text: str) -> str | None:
    """Why `text` is not a usable age X25519 recipient, or None when it is."""
    try:
        recipient(text)
    except ImportError:
        return f"sealing needs pyrage ({EXTRA})"
    except Exception:
        return "is not a valid age X25519 recipient (age1...)"
    return None


def recipient(text: str) -> Any:
    """pyrage's X25519 recipient of `text` (age1...)."""
    import pyrage

    return pyrage.x25519.Recipient.from_str(text)
