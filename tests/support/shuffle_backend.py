"""A local stand-in for Shuffle's backend, as an app's SDK talks to it: it answers the
execution the app asks for (/api/v1/streams/results) and keeps every result the app posts
(/api/v1/streams), for the tests to read."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.support.loopback_http import LoopbackHTTP, QuietHandler


class ShuffleBackend:
    def __init__(self, execution_argument: str = "") -> None:
        """`execution_argument`: the workflow's input, what `$exec...` references read."""
        self.results: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        backend = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.0"  # as it was: one request a connection

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                document = json.loads(body or b"{}")
                if self.path.endswith("/streams/results"):
                    answer: dict[str, Any] = {
                        "execution_id": document.get("execution_id"),
                        "authorization": document.get("authorization"),
                        "status": "EXECUTING",
                        "workflow": {"id": "workflow-1", "execution_org": {"id": "org-1"}},
                        "results": [],
                        "execution_variables": [],
                        "execution_argument": execution_argument,
                    }
                else:
                    with backend.lock:
                        backend.results.append(document)
                    answer = {"success": True}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._http = LoopbackHTTP(Handler)
        self.url = self._http.url

    def stop(self) -> None:
        self._http.close()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.results)


def action(parameters: dict[str, str]) -> dict[str, Any]:
    """An action as Shuffle's backend hands it to an app: every value a string."""
    return {
        "name": "create_access_key",
        "app_name": "iam-create-access-key",
        "id": "action-1",
        "parameters": [
            {
                "name": name,
                "value": value,
                "options": None,
                "schema": {"type": "string"},
                "unique_toggled": False,
            }
            for name, value in parameters.items()
        ],
    }
