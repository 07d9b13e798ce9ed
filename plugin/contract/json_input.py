"""JSON from outside (an engine's stdin, a runner's parameters_as_json), read defensively.

Python's json module recurses once per level: a document nested a few thousand deep raises
RecursionError, which is no ValueError and would pass for a bug of the plugin's. Nesting is
measured first (a bracket count, no recursion), and anything unreadable is one ValueError
saying where (line and column: json's own words, which never quote the document).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32  # a request is a few levels deep; anything deeper is not one
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class UnreadableJSON(ValueError):
    """Not JSON, not UTF-8, or nested deeper than MAX_DEPTH."""


def loads(
    text: str | bytes, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Any:
    """The JSON value in `text`; UnreadableJSON (or the hook's own ValueError) otherwise."""
    if nesting(text) > MAX_DEPTH:
        raise UnreadableJSON(f"it is nested more than {MAX_DEPTH} deep")
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as error:
        raise UnreadableJSON(
            f"it is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except UnicodeDecodeError as error:
        line, column = _position(error.object, error.start)
        raise UnreadableJSON(
            f"it is not valid UTF-8 JSON: a byte that is not UTF-8 at line {line}, column {column}"
        ) from None
    except RecursionError:  # not reachable within MAX_DEPTH, kept as a second net
        raise UnreadableJSON(f"it is nested more than {MAX_DEPTH} deep") from None


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    """Line and column (from 1) of a byte offset, as json counts them for text."""
    line = raw.count(b"\n", 0, offset) + 1
    return line, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def nesting(text: str | bytes) -> int:
    """How deep brackets nest, counting those inside strings too: an over-count only refuses a
    strange document, never admits a deep one. Stops counting once past MAX_DEPTH."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = deepest = 0
    for byte in raw.translate(None, _NOT_BRACKETS):
        depth += 1 if byte in (0x5B, 0x7B) else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
    return deepest
