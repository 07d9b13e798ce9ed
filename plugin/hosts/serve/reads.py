"""How many request messages `serve` reads at once: a bound on the memory requests take, fair
between clients.

grpc core receives a stream's message only as far as the stream's HTTP/2 window lets the sender
send, and a stream's window grows to the whole message only once a read is posted for it
(chttp2's StreamFlowControl::DesiredAnnounceSize, src/core/ext/transport/chttp2/transport/
flow_control.cc: min_progress_size). So a stream whose read is not posted costs at most its
initial window (a fixed 16 KiB: BDP probing, which would raise it to 16 MiB, is off in
server.py), and the requests being received at once are bounded by the reads posted: this gate.

A permit is held only while its read is under way (a well-behaved sender's message is in its
socket already: milliseconds), at most READ_SECONDS; a stream that has not sent its message by
then is ended. Permits go first to trusted clients (a recent quick read), then strangers,
then marked ones (a slow read or one that ran out): a client is an address, not a connection,
so its marks outlive reconnects (README, Tenants and load: what this cannot tell apart).
"""

from __future__ import annotations

import asyncio
import collections
import time

# Reads under way at once: each may receive a whole message (at most MAX_MESSAGE_BYTES, 5 MiB),
# so these bound what requests being received take (4 x 5 MiB; with 8, the peak under 100
# concurrent 4 MiB requests was 15 MiB higher: README, Tenants and load). A small request is
# in its stream's window already and reads in well under a millisecond: 4 are no bottleneck.
READS_AT_ONCE = 4
# How long a read may hold its permit: a sender that has not sent its message within this of
# its read starting is ended (5 MiB at 5 MiB/s; a runner on the pod network sends it in ms).
READ_SECONDS = 1.0
# How long a read may hold its permit and still count as quick: a runner's message is in its
# socket already (milliseconds); one that takes longer marks its client as a stall does.
SLOW_SECONDS = READ_SECONDS / 2
# How long a client's mark lasts after its last slow read: it outlives reconnects (a new
# connection from the same address is the same client), and ages out.
MARK_SECONDS = 60.0
# How long a client's last quick read makes it trusted: first in line, and the reserve is its.
TRUST_SECONDS = 600.0
# Permits only trusted clients may take: a runner that has called before never waits for a
# stranger's or a marked client's read to end.
RESERVED = 1
# How many clients are remembered (marks, quick reads; the least recent forgotten).
CLIENTS_REMEMBERED = 1024

TRUSTED, STRANGER, MARKED = 0, 1, 2


def client_of(peer: str) -> str:
    """The client a connection's peer string names: its address without the port
    ("ipv4:10.0.0.7:51234" -> "ipv4:10.0.0.7"), so reconnecting makes no new client. A `unix:`
    peer names no process (grpc's peer string is "unix:" for every client connection and the
    Python server exposes no connection object): every unix client is one client."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return kind + ":" + rest.rpartition(":")[0]
    return peer


class ReadGate:
    """READS_AT_ONCE permits to read a request. Waiters are served by standing (of their
    connection, else of its client: client_of): first the trusted (a quick read in the last
    TRUST_SECONDS, no mark), then strangers, then the marked (a read held its permit
    SLOW_SECONDS or more, or ran out of it: the connection for good, its client for the last
    MARK_SECONDS); within a standing, the connection with fewest struck reads, the client and the
    connection holding fewest permits, then in turn. RESERVED permits go to trusted clients
    only, so a runner that has called before waits for no stranger's read."""

    def __init__(self, permits: int = READS_AT_ONCE) -> None:
        self.permits = permits
        self.free = permits
        self._held: collections.Counter[str] = collections.Counter()
        self._client_held: collections.Counter[str] = collections.Counter()
        # by connection, in the order each first waited; each a queue of waiting reads
        self._waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}
        # connections a read of which held its permit READ_SECONDS in vain (the latest kept)
        self._struck: collections.OrderedDict[str, int] = collections.OrderedDict()
        # client -> when its last slow read ended; client, connection -> its last quick read
        self._marked = LastSeen()
        self._quick = LastSeen()
        self._quick_connections = LastSeen()

    def struck(self, connection: str) -> None:
        """A read on `connection` held its permit READ_SECONDS without its message arriving:
        that connection's reads, and its client's, now wait behind those of others."""
        self._struck[connection] = self._struck.pop(connection, 0) + 1
        if len(self._struck) > CLIENTS_REMEMBERED:  # peer strings of closed connections
            self._struck.popitem(last=False)
        self._marked.note(client_of(connection))

    def read_took(self, connection: str, seconds: float) -> None:
        """A read on `connection` ended with its message after holding its permit `seconds`:
        a quick one trusts its client, a slow one marks it."""
        if seconds < SLOW_SECONDS:
            self._quick.note(client_of(connection))
            self._quick_connections.note(connection)
        else:
            self.struck(connection)

    def standing(self, connection: str) -> int:
        """TRUSTED, STRANGER or MARKED, as the recent reads of the connection say, else those
        of its client: a connection that has read quickly and never slowly is trusted even if
        another connection from its address is marked (the runner's open channel, next to a
        stranger on the same node), and a new connection is judged by its client."""
        client = client_of(connection)
        if connection != client:  # "unix:" names every unix connection: its client's marks age
            if connection in self._struck:
                return MARKED
            if self._quick_connections.within(connection, TRUST_SECONDS):
                return TRUSTED
        if self._marked.within(client, MARK_SECONDS):
            return MARKED
        if self._quick.within(client, TRUST_SECONDS):
            return TRUSTED
        return STRANGER

    def _rank(self, connection: str) -> tuple[int, int, int, int]:
        client = client_of(connection)
        return (
            self.standing(connection),
            self._struck.get(connection, 0),
            self._client_held[client],
            self._held[connection],
        )

    async def take(self, connection: str) -> None:
        """A permit for one read on `connection` (grpc's peer string: one per connection)."""
        if (
            self.free > 0
            and not self._waiting
            and (self.free > RESERVED or self.standing(connection) == TRUSTED)
        ):
            self._grant(connection)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(connection, collections.deque()).append(waiter)
        self._dispatch()  # a trusted arrival takes the reserve at once
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(connection)  # granted as it was cancelled: pass it on
            else:
                self._forget(connection, waiter)
            raise

    def give_back(self, connection: str) -> None:
        """The read is done (or ended): its permit goes to the next waiter."""
        self._held[connection] -= 1
        if self._held[connection] <= 0:
            del self._held[connection]
        client = client_of(connection)
        self._client_held[client] -= 1
        if self._client_held[client] <= 0:
            del self._client_held[client]
        self.free += 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self.free > 0 and self._waiting:
            # the first by rank; on ties, the one served least lately (a connection served
            # goes to the back: its many streams cannot keep the front)
            first = min(self._waiting, key=self._rank)
            if self.free <= RESERVED and self.standing(first) != TRUSTED:
                return  # the reserve waits for a trusted client
            queue = self._waiting.pop(first)
            waiter = queue.popleft()
            if queue:
                self._waiting[first] = queue
            if not waiter.done():
                self._grant(first)
                waiter.set_result(None)

    def held(self) -> int:
        return self.permits - self.free

    def _grant(self, connection: str) -> None:
        self.free -= 1
        self._held[connection] += 1
        self._client_held[client_of(connection)] += 1

    def _forget(self, connection: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(connection)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[connection]


class LastSeen:
    """When each client (or connection) was last noted, the least recent forgotten beyond
    CLIENTS_REMEMBERED; used on the event loop only (the read gate's marks and trust, the call
    slots' marks and shares: calls.py)."""

    def __init__(self) -> None:
        self._when: collections.OrderedDict[str, float] = collections.OrderedDict()

    def note(self, key: str) -> None:
        self._when.pop(key, None)
        self._when[key] = time.monotonic()
        if len(self._when) > CLIENTS_REMEMBERED:
            self._when.popitem(last=False)

    def within(self, key: str, seconds: float) -> bool:
        """Whether `key` was noted in the last `seconds`."""
        when = self._when.get(key)
        return when is not None and time.monotonic() - when < seconds

    def others_within(self, key: str, seconds: float) -> bool:
        """Whether a key other than `key` was noted in the last `seconds`."""
        now = time.monotonic()
        for other, when in reversed(self._when.items()):  # the most recent first
            if now - when >= seconds:
                return False
            if other != key:
                return True
        return False
