"""IAM Create Access Key: an action plugin for no-code automation platforms.

`execute(request)` runs the action for an engine; `test_connection(request)` checks a
connection. Both are imported on first use, so that the command line can start its clock
(and switch off the garbage collector) before botocore is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import execute, test_connection

__all__ = ["execute", "test_connection"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'plugin' has no attribute {name!r}")
