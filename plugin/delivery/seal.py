"""Seal the new secret to an age recipient: only the holder of the matching identity reads it.

Every peer returns the secret in clear into whatever stores a step's output (Terraform's state,
a workflow engine's execution history). Sealed, what is stored there is useless to anyone else;
`iam-create-access-key unseal --identity KEY` (or `age -d -i KEY`) opens it. pyrage (the `seal`
and `demo` extras) is imported only when sealing or opening is asked for.
"""

from __future__ import annotations

from plugin.contract.recipients import EXTRA as EXTRA  # unseal names it as seal.EXTRA
from plugin.contract.recipients import recipient as _recipient


def seal(secret: str, recipient: str) -> str:
    """The secret, encrypted to `recipient`, as ASCII-armored age text."""
    import pyrage

    sealed: bytes = pyrage.encrypt(secret.encode(), [_recipient(recipient)], armored=True)
    return sealed.decode("ascii")


def new_identity() -> tuple[str, str]:
    """A fresh age X25519 identity (its secret text) and its recipient (age1...)."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def open_sealed(sealed: str, identity_file_text: str) -> str:
    """The clear text of ASCII-armored age text, opened with an identity file's keys (the
    lines that are not comments, as age-keygen writes them)."""
    import pyrage

    identities = [
        pyrage.x25519.Identity.from_str(line.strip())
        for line in identity_file_text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    opened: bytes = pyrage.decrypt(sealed.encode("ascii"), identities)
    return opened.decode("utf-8")
