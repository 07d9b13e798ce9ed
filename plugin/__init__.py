"""IAM Create Access Key: an action plugin for no-code automation platforms.

`execute(request)` runs the action for an engine; `test_connection(request)` checks a
connection. Both are imported on first use, so that the command line can start its clock
(and switch off the garbage collector) before botocore is loaded.

The map (each wing's __init__ is its index, and imports nothing):

- hosts/: the doors: the command line, the demo, serve (Blink's gRPC protocol), the Shuffle app,
  and operator/ (what serve's and Shuffle's operator decides: policy, settings);
- engine: the one way every door reaches the action (a request mapping in, a response out);
- invocation/: one invocation: run, create, reconcile, idempotency, limit, the waits, the key's
  other steps, check only, the connection test;
- delivery/: where a secret goes besides the answer: sealed, a vault, an SES password, a file;
- aws/: talking to AWS: sessions, clients, services, XML to JSON, what botocore raises;
- runtime/: one invocation's runtime: its context, its deadline, log redaction, the key witness;
- contract/: what a request and an answer are: manifest, schemas, validation, request, regions,
  the product's error type (ActionError and its codes).

The import rule: hosts -> engine -> invocation -> delivery -> aws -> runtime -> contract. A module
imports its own wing and the wings to its right, never one to its left (the contract imports only
the contract). Inside hosts, a door reaches only operator/ (what doors share) and its own
package; the command line also reaches the doors it hosts (serve, health, demo).
tests/test_layout.py checks it, imports inside functions, under TYPE_CHECKING and by name
(importlib) included.
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
