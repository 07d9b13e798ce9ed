"""Senders that stall part-way through a large message (the third red team's attack): on each of
`connections` connections, as many streams as the server allows (ExecuteAction, or the method
`path` names), each sending a 5,000,000-byte message as fast as the server's flow control lets
it, but never its last byte, so no handler ever gets it. A stream the server ends is opened
again."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from tests.support.hang_up import EXECUTE, call_headers

MESSAGE_BYTES = 5_000_000


class SlowSenders:
    """Threads of this process sending for `seconds`; `streams_allowed` is what the server's
    SETTINGS said (SETTINGS_MAX_CONCURRENT_STREAMS), as the first connection received it."""

    def __init__(
        self, port: int, connections: int, streams: int, seconds: float, path: str = EXECUTE
    ) -> None:
        self.port = port
        self.headers = call_headers(path)
        self.streams = streams
        self.ends = time.monotonic() + seconds
        self.streams_allowed: int | None = None
        self.reopened = 0
        self.body = b"\0" + MESSAGE_BYTES.to_bytes(4, "big") + b"\x0a" * MESSAGE_BYTES
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._connection, daemon=True) for _ in range(connections)
        ]
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(max(1.0, self.ends - time.monotonic() + 5))

    def _connection(self) -> None:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port)) as sock,
        ):
            sock.settimeout(0.1)
            connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            connection.initiate_connection()
            sock.sendall(connection.data_to_send())
            sent: dict[int, int] = {}  # stream -> bytes of the message sent
            last = len(self.body) - 1  # never sent
            while time.monotonic() < self.ends:
                while len(sent) < self.streams:
                    try:
                        stream = connection.get_next_available_stream_id()
                        connection.send_headers(stream, self.headers)
                    except h2.exceptions.TooManyStreamsError:
                        break
                    sent[stream] = 0
                for stream in list(sent):
                    try:
                        room = min(
                            connection.local_flow_control_window(stream),
                            connection.max_outbound_frame_size,
                            last - sent[stream],
                        )
                        if room > 0:
                            connection.send_data(
                                stream, self.body[sent[stream] : sent[stream] + room]
                            )
                            sent[stream] += room
                    except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                        sent.pop(stream)
                sock.sendall(connection.data_to_send())
                try:
                    data = sock.recv(1 << 20)
                except TimeoutError:
                    continue
                if not data:
                    return
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RemoteSettingsChanged):
                        with self._lock:
                            if self.streams_allowed is None:
                                self.streams_allowed = (
                                    connection.remote_settings.max_concurrent_streams
                                )
                    ended = isinstance(event, (h2.events.StreamReset, h2.events.StreamEnded))
                    if ended and sent.pop(event.stream_id, None) is not None:
                        with self._lock:
                            self.reopened += 1
                sock.sendall(connection.data_to_send())
