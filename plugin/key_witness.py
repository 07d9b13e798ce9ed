"""Tell the host the moment a key exists, and when one is deleted: a long-lived server must be
able to name the keys of calls it could not finish (on SIGTERM, say).

The witness is the invocation's (a context variable, which follows it into the workers that
make its calls under a deadline); a one-shot `run` has none, and reporting costs nothing then.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

CREATED = "created"
DELETED = "deleted"

Witness = Callable[[str, str], None]  # (event, key id)
_WITNESS: contextvars.ContextVar[Witness | None] = contextvars.ContextVar(
    "key_witness", default=None
)


def report(event: str, key_id: str) -> None:
    witness = _WITNESS.get()
    if witness is not None:
        witness(event, key_id)


@contextlib.contextmanager
def witnessed_by(witness: Witness) -> Iterator[None]:
    token = _WITNESS.set(witness)
    try:
        yield
    finally:
        _WITNESS.reset(token)
