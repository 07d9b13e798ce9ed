"""The calls `serve` has in flight: a bounded number of slots, an id for each call, and the
keys each one made, so that a server stopped mid-create can say which keys it leaves behind."""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import threading
import time
from typing import Any

from plugin.runtime import deadline, key_witness

from .reads import LastSeen

# Threads still reading a dripping endpoint for calls that have ended, per call slot: enough
# that one tenant's drips (each bounded by botocore's timeouts between bytes) do not refuse
# the others at once, few enough that threads stay bounded.
ABANDONED_PER_SLOT = 4


# A client that left an answer carrying a key unread (its write ran out of time), or took one
# late (after KEYLESS_WRITE_SECONDS of writing), in the last UNREAD_MARK_SECONDS may hold at
# most 1/MARKED_SHARE of the slots: a caller with credentials of its own that never reads its
# answers (the fourth red team), or reads each after 8 s (the fifth), takes every slot once, for
# the time an answer's write is given, then leaves the others three quarters of them.
MARKED_SHARE = 4
UNREAD_MARK_SECONDS = 60.0
# While another client has called in the last SHARED_SECONDS, one client may hold at most this
# share of the slots (the rest kept for the others): the sixth red team held all 32 from one
# address with calls that were slow but proper (each waiting 60 s for a user that never came,
# or taking each key 1.8 s late), and such a caller cannot be told from a busy runner. A client
# alone may hold them all.
SHARED_SHARE = 0.75
SHARED_SECONDS = 60.0


class Slots:
    """At most `size` ExecuteAction/TestCredentials calls at once; one more is refused at
    once (never queued). A slot is free again when its call has ended: a worker still blocked
    on an endpoint that drips the answer of a call given up on holds no slot, but counts
    (deadline.abandoned, by client) and, past ABANDONED_PER_SLOT times `size` of them, new
    calls of the clients they were given up for are refused too: threads, and so memory, stay
    bounded whatever the endpoints do. Slots are counted by client too, for the share a marked
    client may hold (UnreadAnswers) and a client's share while others call."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.marked_most = max(1, size // MARKED_SHARE)
        self.shared_most = max(1, int(size * SHARED_SHARE))
        self._taken = 0
        self._by_client: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, client: str = "", marked: bool = False, shared: bool = False) -> str | None:
        """A slot for `client`, or why not: "busy" (every slot is taken), "marked" (a marked
        client holding its share) or "shared" (a client holding its share while others call)."""
        with self._lock:
            if self._taken >= self.size:
                return "busy"
            held = self._by_client.get(client, 0)
            if marked and held >= self.marked_most:
                return "marked"
            if shared and held >= self.shared_most:
                return "shared"
            self._taken += 1
            _add(self._by_client, client, 1)
            return None

    def give_back(self, client: str = "") -> None:
        with self._lock:
            self._taken -= 1
            _add(self._by_client, client, -1)

    def abandoned_too_many(self, client: str) -> bool:
        """Whether calls given up on forbid this client another call: past the bound, a client
        some of whose own calls given up on are still waiting. One with none is let through:
        its endpoints answer, and the bound was spent by others (the eighth red team's 8 calls
        to a dripping endpoint of its own refused every caller for as long as it liked). So
        the threads stay within the bound plus what one round of such clients' calls leaves."""
        return deadline.abandoned() >= self.abandoned_limit and deadline.abandoned(client) > 0

    @property
    def abandoned_limit(self) -> int:
        return ABANDONED_PER_SLOT * self.size


def _add(counts: dict[str, int], client: str, change: int) -> None:
    """Add `change` to `client`'s count, forgetting a client whose count falls to nothing."""
    left = counts.pop(client, 0) + change
    if left > 0:
        counts[client] = left


class UnreadAnswers(LastSeen):
    """Clients (reads.client_of: a peer's address) that left an answer carrying a key unread,
    or took it late, when they last did. Unix callers are never marked: grpc names every one
    of them `unix:`, the runner included."""

    def note(self, key: str) -> None:
        if key.startswith(("ipv4:", "ipv6:")):
            super().note(key)

    def marked(self, client: str) -> bool:
        return self.within(client, UNREAD_MARK_SECONDS)


class BytesInFlight:
    """At most `budget` bytes of requests (as received: their context, echoed in the answer, is
    all that can be large) carried by the calls in flight; a call that would pass it is
    refused at once, before its request is parsed or anything is sent to AWS. A call alone
    always passes (a request is at most 5 MiB): a budget below one request serves such calls
    one at a time."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.shared_most = int(budget * SHARED_SHARE)
        self.held = 0
        self._by_client: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, size: int, client: str = "", shared: bool = False) -> str | None:
        """Room for `size` bytes of `client`'s, or why not: "budget" (past the budget, unless
        nothing is held) or "shared" (while other clients call, past SHARED_SHARE of it for a
        client that holds some already: the seventh red team filled the budget from one address
        with three large requests waiting for users, and the runner's were refused for 60 s)."""
        with self._lock:
            if self.held and self.held + size > self.budget:
                return "budget"
            mine = self._by_client.get(client, 0)
            if shared and mine and mine + size > self.shared_most:
                return "shared"
            self.held += size
            _add(self._by_client, client, size)
            return None

    def give_back(self, size: int, client: str = "") -> None:
        with self._lock:
            self.held -= size
            _add(self._by_client, client, -size)


@dataclasses.dataclass
class Flight:
    """One call: its id (in its log_buffer and every server line about it), whom it is for,
    its engine request once read, and the keys it made (key id -> created | deleted)."""

    call_id: str
    subject: str
    hung_up: bool = False  # its answer can no longer be delivered (its key is withdrawn)
    caller_hung_up: bool = False  # ... because the caller went before it was written
    client: str = ""  # reads.client_of its peer: whose slot it holds
    holds_slot: bool = True  # until it ends, or its answer is known to carry no key
    carried: int = 0  # its request's bytes, held in BytesInFlight until it ends
    started: float = dataclasses.field(default_factory=time.time)
    started_monotonic: float = dataclasses.field(default_factory=time.monotonic)
    request: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    keys: dict[str, str] = dataclasses.field(default_factory=dict)

    def witness(self, event: str, detail: str | float) -> str | None:
        """Note what happened to one of its keys; return what was known of it before (a key
        deleted stays deleted, whatever a late report says)."""
        if event not in _KEY_EVENTS or not isinstance(detail, str):
            return None
        before = self.keys.get(detail)
        if not (event == key_witness.CREATED and before is not None):
            self.keys[detail] = event
        return before

    def undelivered(self) -> list[str]:
        """Keys it made that nobody received and that are still there."""
        return [key for key, event in self.keys.items() if event != key_witness.DELETED]


_KEY_EVENTS = (key_witness.CREATED, key_witness.DELETED, key_witness.LEFT)


class Flights:
    """The calls under way, by id, and when one last began or ended."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        # Random per process: ids stay unique across pods and restarts (under PID 1 every
        # pod's process is 1, so a PID-based prefix repeated in every pod).
        self._prefix = secrets.token_hex(4)
        self._open: dict[str, Flight] = {}
        self._lock = threading.Lock()
        self._last_change = time.time_ns()  # the server's start, until the first call

    def begin(self, subject: str) -> Flight:
        flight = Flight(f"{self._prefix}-{next(self._numbers)}", subject)
        with self._lock:
            self._open[flight.call_id] = flight
            self._last_change = time.time_ns()
        return flight

    def end(self, flight: Flight) -> None:
        with self._lock:
            self._open.pop(flight.call_id, None)
            self._last_change = time.time_ns()

    def under_way(self) -> list[Flight]:
        with self._lock:
            return list(self._open.values())

    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def last_use(self) -> int:
        """HealthProbe.last_use as the SDK computes it (Unix nanoseconds): now while a call is
        in flight, else when the last one began or ended (the server's start before any)."""
        with self._lock:
            return time.time_ns() if self._open else self._last_change


def unfinished_report(flight: Flight, listed: list[str] | None) -> str:
    """One line for the operator about a call the server stopped before it finished: the keys
    it made and did not deliver, or else those IAM shows on its user since it started
    (`listed`; None when they could not be listed)."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(flight.started))
    stopped = f"the call for {flight.subject} (started {started}) was stopped before"
    keys = flight.undelivered()
    if keys:
        return (
            f"{stopped} its answer: key {', '.join(keys)} was created and not delivered; delete it "
            "(aws iam delete-access-key --access-key-id ...)"
        )
    if listed:
        return (
            f"{stopped} it finished, while IAM was creating its key: IAM shows key "
            f"{', '.join(listed)} on the user since then, whose secret nobody received unless "
            "another call made it; delete it (aws iam delete-access-key --access-key-id ...)"
        )
    if listed == []:
        return f"{stopped} it finished; IAM shows no key made on the user since then"
    return (
        f"{stopped} it finished; if its CreateAccessKey reached IAM, a key made on the user since "
        "then is nobody's (the keys could not be listed)"
    )
