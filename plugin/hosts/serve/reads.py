"""How many request messages `serve` reads at once: a bound on the memory requests take, fair
between connections.

grpc core receives a stream's message only as far as the stream's HTTP/2 window lets the sender
send, and a stream's window grows to the whole message only once a read is posted for it
(chttp2's StreamFlowControl::DesiredAnnounceSize, src/core/ext/transport/chttp2/transport/
flow_control.cc: min_progress_size). So a stream whose read is not posted costs at most its
initial window (a fixed 16 KiB: BDP probing, which would raise it to 16 MiB, is off in
server.py), and the requests being received at once are bounded by the reads posted: this gate.

A permit is held only while its read is under way (a well-behaved sender's message is in its
socket already: milliseconds), at most READ_SECONDS; a stream that has not sent its message by
then is ended. Permits go first to the connection holding the fewest, so the streams of one
connection (stalled, or slow) wait behind each other, not in front of another connection's.
"""

from __future__ import annotations

import asyncio
import collections

# Reads under way at once: each may receive a whole message (at most MAX_MESSAGE_BYTES, 5 MiB),
# so these bound what requests being received take (4 x 5 MiB; with 8, the peak under 100
# concurrent 4 MiB requests was 15 MiB higher: README, Tenants and load). A small request is
# in its stream's window already and reads in well under a millisecond: 4 are no bottleneck.
READS_AT_ONCE = 4
# How long a read may hold its permit: a sender that has not sent its message within this of
# its read starting is ended (5 MiB at 5 MiB/s; a runner on the pod network sends it in ms).
READ_SECONDS = 1.0
# How many connections whose reads ran out of time are remembered (a peer string each).
STRUCK_REMEMBERED = 1024


class ReadGate:
    """READS_AT_ONCE permits to read a request; waiters are served by connection: first the
    connections none of whose reads ran out of time holding a permit (`struck`), then the one
    holding the fewest permits, then in turn. So stalled streams, once one of them has run
    out of time, wait behind every other connection's reads: those wait READ_SECONDS at most
    for a permit to come free."""

    def __init__(self, permits: int = READS_AT_ONCE) -> None:
        self.permits = permits
        self.free = permits
        self._held: collections.Counter[str] = collections.Counter()
        # by connection, in the order each first waited; each a queue of waiting reads
        self._waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}
        # connections a read of which held its permit READ_SECONDS in vain (the latest kept)
        self._struck: collections.OrderedDict[str, int] = collections.OrderedDict()

    def struck(self, connection: str) -> None:
        """A read on `connection` held its permit READ_SECONDS without its message arriving:
        that connection's reads now wait behind those of connections that never did."""
        self._struck[connection] = self._struck.pop(connection, 0) + 1
        if len(self._struck) > STRUCK_REMEMBERED:  # peer strings of closed connections
            self._struck.popitem(last=False)

    def _rank(self, connection: str) -> tuple[int, int]:
        return (self._struck.get(connection, 0), self._held[connection])

    async def take(self, connection: str) -> None:
        """A permit for one read on `connection` (grpc's peer string: one per connection)."""
        if self.free > 0 and not self._waiting:
            self._grant(connection)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(connection, collections.deque()).append(waiter)
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
        self.free += 1
        while self.free > 0 and self._waiting:
            # the first by rank; on ties, the one served least lately (a connection served
            # goes to the back: its many streams cannot keep the front)
            fewest = min(self._waiting, key=self._rank)
            queue = self._waiting.pop(fewest)
            waiter = queue.popleft()
            if queue:
                self._waiting[fewest] = queue
            if not waiter.done():
                self._grant(fewest)
                waiter.set_result(None)

    def held(self) -> int:
        return self.permits - self.free

    def _grant(self, connection: str) -> None:
        self.free -= 1
        self._held[connection] += 1

    def _forget(self, connection: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(connection)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[connection]
