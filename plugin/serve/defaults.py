"""`serve`'s defaults and choices, in a module of their own: the command line shows them
without importing grpc (which the `run` path never pays for)."""

from __future__ import annotations

import os

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337
DEFAULT_GRACE_SECONDS = 60.0
# Every call ends within this, even one whose caller set no deadline.
DEFAULT_MAX_CALL_SECONDS = 300.0
# Calls in flight by default: they wait on the network, not the processor, but each holds a
# thread and its memory; enough for a runner's bursts on a small pod.
DEFAULT_MAX_CALLS = min(64, max(32, 16 * (os.cpu_count() or 2)))

# Whose AWS identity a call without an access key of its own may act with (serve_policy).
LEND_NONE = "none"
LEND_ASSUME_ROLE = "assume-role"
LEND_ALL = "all"
LEND_CHOICES = (LEND_NONE, LEND_ASSUME_ROLE, LEND_ALL)
