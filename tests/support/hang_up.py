"""Callers that never read their answer: `never_reading` sends an ExecuteAction whole and grants
the server no flow-control window for the answer (HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE 0), so the
server's write waits; `hang_up_mid_answer` then closes its socket (as the red team's zero-window
clients did)."""

from __future__ import annotations

import contextlib
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

EXECUTE = "/integration_pack.Plugin/ExecuteAction"


def call_headers(path: str = EXECUTE) -> list[tuple[str, str]]:
    """A gRPC call's request headers, as a client sends them."""
    return [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers"),
    ]  # fmt: skip


def _window_shut(port: int, source: str) -> tuple[socket.socket, h2.connection.H2Connection]:
    """A new connection from `source` whose settings grant the server no flow-control window
    for answers (HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE 0)."""
    held = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    )
    connection.initiate_connection()
    return held, connection


def never_reading(
    port: int, message: bytes, source: str = "127.0.0.1"
) -> tuple[socket.socket, h2.connection.H2Connection]:
    """A new connection from `source` that grants the server no flow-control window for its
    answer, with `message` (a serialized ExecuteActionRequest) sent whole on one ExecuteAction
    stream and no grpc-timeout: the server can write nothing of the answer until the socket is
    closed."""
    held, connection = _window_shut(port, source)
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, call_headers())
    body = b"\0" + len(message).to_bytes(4, "big") + message
    while body:
        room = min(
            connection.local_flow_control_window(stream),
            connection.max_outbound_frame_size,
            len(body),
        )
        if room <= 0:  # wait for the server's window updates
            held.sendall(connection.data_to_send())
            connection.receive_data(held.recv(65536))
            continue
        connection.send_data(stream, body[:room])
        body = body[room:]
    connection.end_stream(stream)
    held.sendall(connection.data_to_send())
    return held, connection


def never_reading_calls(
    port: int, path: str, messages: list[bytes], source: str = "127.0.0.1"
) -> tuple[socket.socket, h2.connection.H2Connection]:
    """One connection from `source` that grants no window for answers, with a call to `path`
    for each of `messages` (small: each sent whole at once), the fourth red team's slot
    holder; kept open until closed."""
    held, connection = _window_shut(port, source)
    for message in messages:
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, call_headers(path))
        body = b"\0" + len(message).to_bytes(4, "big") + message
        connection.send_data(stream, body, end_stream=True)
    held.sendall(connection.data_to_send())
    return held, connection


def answers_begun(
    held: socket.socket, connection: h2.connection.H2Connection, count: int, seconds: float
) -> set[int]:
    """The streams of a never-reading connection whose answers have begun (their headers came:
    the server's action is done and its answer waits for the window), up to `count`, within
    `seconds`."""
    begun: set[int] = set()
    ends = time.monotonic() + seconds
    held.settimeout(0.2)
    while len(begun) < count and time.monotonic() < ends:
        with contextlib.suppress(TimeoutError):
            events = connection.receive_data(held.recv(65536))
            begun.update(
                event.stream_id for event in events if isinstance(event, h2.events.ResponseReceived)
            )
        held.sendall(connection.data_to_send())
    return begun


def statuses(
    held: socket.socket, connection: h2.connection.H2Connection, count: int, seconds: float
) -> dict[int, tuple[str, str]]:
    """The gRPC status and message (as sent, percent-encoded) of the first `count` streams
    that end with trailers on a never-reading connection, within `seconds`."""
    ended: dict[int, tuple[str, str]] = {}
    ends = time.monotonic() + seconds
    held.settimeout(0.2)
    while len(ended) < count and time.monotonic() < ends:
        try:
            data = held.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        for event in connection.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                said = {
                    (name.decode() if isinstance(name, bytes) else name): (
                        value.decode() if isinstance(value, bytes) else value
                    )
                    for name, value in event.headers
                }
                if "grpc-status" in said:
                    ended[event.stream_id] = (said["grpc-status"], said.get("grpc-message", ""))
        held.sendall(connection.data_to_send())
    return ended


def hang_up_mid_answer(port: int, message: bytes, wait: float) -> None:
    """Send `message` on a never-reading connection, keep it open `wait` seconds, then close
    it."""
    held, connection = never_reading(port, message)
    with held:
        held.settimeout(0.2)
        ends = time.monotonic() + wait
        while time.monotonic() < ends:  # answer its settings and pings, never open a window
            try:
                data = held.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            connection.receive_data(data)
            held.sendall(connection.data_to_send())
