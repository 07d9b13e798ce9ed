"""A lease on an Idempotency Key: at most one attempt per token acts at a time.

IAM has no conditional write, so exclusion is a lease, as Kubernetes' coordination.k8s.io
Lease (holderIdentity, renewTime, leaseDurationSeconds) and the DynamoDB lock client do it: the
token's tag holds `lease:<nonce>:<since>:<until>[:<replacing>]` (a random nonce naming the
attempt; IAM's time when it looked and when its own deadline passes; the key it is about to
delete in favour of its own, so that a retry after it died still knows that key). An attempt
writes its lease, waits until IAM shows it and then as long again (the settle time), and reads
it back: it goes on only if the lease is its own. IAM's tags are last-writer-wins, so of
attempts that wrote at once every one reads the same winner once the writes have settled.

A value is at most 75 characters (IAM allows 256 per tag value), and the lease takes the same
one tag per token as the key id it becomes (IAM allows 50 tags per user).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import secrets
import time
from collections.abc import Callable

from plugin.runtime.deadline import Deadline, caller_gone, pause

PREFIX = "lease:"
LEGACY_PENDING = "pending:"  # the marker of versions before the lease: an attempt under way
ENDED = "ended"  # the nonce of a lease its attempt gave up
_TIME = "%Y%m%dT%H%M%SZ"
_LEGACY_TIME = "%Y-%m-%dT%H:%M:%SZ"

# The settle time: after IAM first shows this attempt's own lease, wait as long again as that
# took (from the look on), and never less than SETTLE_FLOOR. Two attempts that both missed each
# other's lease wrote within one visibility lag of each other (each looked before the other's
# write showed), so a read-back two lags after the look sees the later write, and both read
# the same winner. Measured with `python -m tests.measure_lease --rounds 50`: moto shows a tag
# in the answer that accepts it (written to shown: median 7 ms, p99 17 ms, on this 2-core
# machine under load); an attempt's look-to-write gap (ListUserTags, ListAccessKeys, TagUser)
# was median 9 ms, p99 43 ms. The floor covers that gap of the *other* attempt with margin.
# Through the proxy playing an IAM that shows a tag 0.5 s late, written to shown was median
# 574 ms, and the settle time follows it (about 1.2 s then).
SETTLE_FLOOR = 0.25
# How long to wait for IAM to show this attempt's own lease before giving up (code 4).
VISIBLE_WITHIN = 15.0


@dataclasses.dataclass(frozen=True)
class Lease:
    """One attempt's claim on a token, in IAM's clock; `legacy` for a pre-lease marker."""

    nonce: str
    since: dt.datetime
    until: dt.datetime
    replacing: str = ""
    legacy: bool = False

    @property
    def ended(self) -> bool:
        """Its attempt failed and said so (ended its lease early)."""
        return self.nonce == ENDED

    def value(self) -> str:
        """The tag value (at most 75 characters)."""
        parts = [self.nonce, self.since.strftime(_TIME), self.until.strftime(_TIME)]
        return PREFIX + ":".join(parts + ([self.replacing] if self.replacing else []))

    def expired(self, iam_now: dt.datetime) -> bool:
        """Whether its attempt is over (a legacy marker's attempt is taken for dead, as before)."""
        return self.legacy or self.ended or iam_now >= self.until

    def end(self, iam_now: dt.datetime) -> Lease:
        """This lease, over: expired for any reader, its window of keys up to `iam_now`."""
        return dataclasses.replace(self, nonce=ENDED, until=min(iam_now, self.until))

    def window_end(self, longest: dt.timedelta) -> dt.datetime:
        """The latest a key of this attempt's can have been created."""
        return self.since + longest if self.legacy else self.until


def parse(value: str) -> Lease | None:
    """The lease a tag value holds (a legacy `pending:` marker too), or None (a key id)."""
    if value.startswith(LEGACY_PENDING):
        try:
            since = dt.datetime.strptime(value[len(LEGACY_PENDING) :], _LEGACY_TIME)
        except ValueError:
            return None
        since = since.replace(tzinfo=dt.timezone.utc)
        return Lease("", since, since, legacy=True)
    if not value.startswith(PREFIX):
        return None
    parts = value[len(PREFIX) :].split(":")
    if len(parts) not in (3, 4):
        return None
    try:
        since, until = (
            dt.datetime.strptime(text, _TIME).replace(tzinfo=dt.timezone.utc) for text in parts[1:3]
        )
    except ValueError:
        return None
    return Lease(parts[0], since, until, parts[3] if len(parts) == 4 else "")


def new(iam_now: dt.datetime, deadline: Deadline, replacing: str) -> Lease:
    """A lease for this attempt, until its deadline. IAM's Date header is whole seconds (the
    true time is up to 1 s later), so the deadline is rounded up and a second added."""
    since = iam_now.replace(microsecond=0)
    until = since + dt.timedelta(seconds=math.ceil(deadline.remaining()) + 1)
    return Lease(secrets.token_hex(8), since, until, replacing)


def iam_time(iam_then: dt.datetime, monotonic_then: float) -> dt.datetime:
    """IAM's time now, no earlier than the truth, from its Date header read at `monotonic_then`."""
    elapsed = math.ceil(time.monotonic() - monotonic_then) + 1
    return iam_then.replace(microsecond=0) + dt.timedelta(seconds=elapsed)


def settle(
    read: Callable[[], str], mine: Lease, before: str, looked_at: float, deadline: Deadline
) -> tuple[str, float]:
    """Wait until `read()` (the token's tag value) shows `mine`, then the settle time; return
    the value read then, and the lag measured (seconds from the look until IAM showed `mine`).

    If a value other than `mine` and `before` (what the look saw) shows up, another attempt
    wrote too: `mine` is waited for about as long again as it took to see that write. What was
    read last is returned, with a lag of -1, when IAM does not show `mine` in time.
    """
    wait = 0.02
    limit = time.monotonic() + min(VISIBLE_WITHIN, max(deadline.remaining() / 2, 1.0))
    other_seen = False
    while True:
        value = read()
        now = time.monotonic()
        if value == mine.value():
            break
        if value != before and not other_seen:
            # Another attempt wrote too. If it wrote first, this attempt's later write shows
            # within about the lag seen so far; if not, this one has lost.
            other_seen = True
            limit = min(limit, now + max(SETTLE_FLOOR, now - looked_at))
        if now >= limit or caller_gone():
            return value, -1.0
        pause(wait)
        wait = min(wait * 2, 0.5)
    lag = time.monotonic() - looked_at
    pause(max(SETTLE_FLOOR, lag))
    return read(), lag
