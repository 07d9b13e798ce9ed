"""Tell the host what happens to keys and waits as it happens: a long-lived server must be able
to name the keys of calls it could not finish (on SIGTERM, say), and to count for its operator
the keys made, deleted or left behind, and how long the waits took.

The witness is the invocation's (a context variable, which follows it into the workers that
make its calls under a deadline); a one-shot `run` has none, and reporting costs nothing then.
Nothing a caller chose travels here: key ids (for the host's own log) and seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from .context import bound

CREATED = "created"  # detail: the key id
DELETED = "deleted"  # a key nobody could receive was deleted; detail: the key id
LEFT = "left"  # such a key could not be deleted; detail: the key id
WAITED_FOR_USER = "waited_for_user"  # detail: seconds (IAM did not show the user at first)
WAITED_UNTIL_USABLE = "waited_until_usable"  # detail: seconds until STS accepted the key

Witness = Callable[[str, "str | float"], None]  # (event, detail)
_WITNESS: contextvars.ContextVar[Witness | None] = contextvars.ContextVar(
    "key_witness", default=None
)


def report(event: str, detail: str | float) -> None:
    witness = _WITNESS.get()
    if witness is not None:
        witness(event, detail)


@contextlib.contextmanager
def witnessed_by(witness: Witness) -> Iterator[None]:
    with bound(_WITNESS, witness):
        yield
