"""Connections held open on a port, as the red team's health_starve.py held them: each says the
HTTP/2 preface and settings, then nothing (or, bare, nothing at all), and is reopened at once
when the server closes it."""

from __future__ import annotations

import socket
import threading
import time

import h2.config
import h2.connection


class HeldConnections:
    """`count` connections to 127.0.0.1:`port`, each held (and reopened) by a thread of its
    own until `release()`; `reopened` counts the connections the server closed."""

    def __init__(self, port: int, count: int, bare: bool = False) -> None:
        self.port, self.bare = port, bare
        self.reopened = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as held:
                    connection = h2.connection.H2Connection(
                        h2.config.H2Configuration(client_side=True)
                    )
                    if not self.bare:
                        connection.initiate_connection()
                        held.sendall(connection.data_to_send())
                    held.settimeout(0.5)
                    self._keep(held, connection)
            except OSError:
                time.sleep(0.05)
            self.reopened += 1

    def _keep(self, held: socket.socket, connection: h2.connection.H2Connection) -> None:
        """Answer the server's settings and pings (as a live client does) until it closes."""
        while not self._stop.is_set():
            try:
                data = held.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            if not self.bare:
                connection.receive_data(data)
                held.sendall(connection.data_to_send())

    def release(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
