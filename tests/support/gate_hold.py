"""The red team's gate_hold in stall mode, short: connections from one address whose streams
send headers and never their message; a connection whose stream is ended as struck is closed
and opened again (a new peer string, as a new connection would be)."""

from __future__ import annotations

import selectors
import socket
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/integration_pack.Plugin/Describe"),
    (":authority", "x"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]


class StallAndReconnect:
    """`connections` x `streams` stalled streams to 127.0.0.1:`port` from `source` (another
    loopback address: another client), reconnecting each connection its streams get ended on,
    for `seconds` in a thread; `ended` and `reconnects` count what the server did."""

    def __init__(self, port: int, source: str, connections: int, streams: int, seconds: float):
        self.port, self.source, self.streams = port, source, streams
        self.ended = self.reconnects = self._pending = 0
        self._next = 0.0
        self._selector = selectors.DefaultSelector()
        self._stop = time.monotonic() + seconds
        for _ in range(connections):
            self._connect()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self) -> tuple[socket.socket, h2.connection.H2Connection]:
        sock = socket.create_connection(("127.0.0.1", self.port), source_address=(self.source, 0))
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        h2c.initiate_connection()
        for _ in range(self.streams):
            try:
                h2c.send_headers(h2c.get_next_available_stream_id(), HEADERS)
            except (h2.exceptions.TooManyStreamsError, h2.exceptions.ProtocolError):
                break
        try:
            sock.sendall(h2c.data_to_send())
        except OSError:
            sock.close()
            raise
        self._selector.register(sock, selectors.EVENT_READ, (sock, h2c))
        return sock, h2c

    def _run(self) -> None:
        while time.monotonic() < self._stop:
            for key, _ in self._selector.select(0.05):
                sock, h2c = key.data
                data = b""
                try:
                    data = sock.recv(1 << 16)
                    events = h2c.receive_data(data) if data else []
                    sock.sendall(h2c.data_to_send())
                except (OSError, h2.exceptions.ProtocolError):
                    events = []
                ended = [e for e in events if isinstance(e, h2.events.StreamEnded)]
                self.ended += len(ended)
                if ended or not data:  # struck (or closed): a new connection, unmarked
                    self._selector.unregister(sock)
                    sock.close()
                    self.reconnects += 1
                    self._pending += 1
                    self._next = time.monotonic() + 0.2
            if self._pending and time.monotonic() < self._next:
                continue  # as gate_hold.py: a closed connection reopened 0.2 s later
            while self._pending:
                self._next = time.monotonic() + 0.2
                try:
                    self._connect()
                except OSError:  # reset at the connection cap: again next round
                    break
                self._pending -= 1
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def join(self) -> None:
        self._thread.join(30)
