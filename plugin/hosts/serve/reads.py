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
# its read starting is ended (5 MiB at 2.5 MiB/s; a runner on the pod network sends it in ms).
READ_SECONDS = 2.0


class ReadGate:
    """READS_AT_ONCE permits to read a request; waiters are served by connection (the one
    holding the fewest first, then in the order they came), so no connection's streams can
    hold back another's for more than READ_SECONDS per permit they hold."""

    def __init__(self, permits: int = READS_AT_ONCE) -> None:
        self.permits = permits
        self.free = permits
        self._held: collections.Counter[str] = collections.Counter()
        # by connection, in the order each first waited; each a queue of waiting reads
        self._waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}

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
            # the waiting connection holding the fewest permits (the first to wait, on ties)
            fewest = min(self._waiting, key=self._held.__getitem__)
            queue = self._waiting[fewest]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[fewest]
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
