"""A real local IAM endpoint for the tests: moto's server on 127.0.0.1, behind a request log.

The log records the IAM action of every request that reaches the server and, for
CreateAccessKey, the exact body that went back, so tests can count what was sent and compare
the action's output with what IAM said.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

ADMIN_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
ADMIN_SECRET = "test-admin-secret-for-the-local-endpoint"


@dataclasses.dataclass
class Exchange:
    action: str
    status: str = ""
    body: bytes = b""


class RecordingApp:
    """WSGI middleware: note each request's IAM action and the response body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
        exchange = Exchange(action)
        with self.lock:
            self.exchanges.append(exchange)

        def recording_start_response(status: str, headers: Any, *rest: Any) -> Any:
            exchange.status = status
            return start_response(status, headers, *rest)

        chunks = list(self.app(environ, recording_start_response))
        exchange.body = b"".join(chunks)
        return chunks


class LocalIAM:
    """The running endpoint, an admin client for set-up, and the request log."""

    def __init__(self) -> None:
        self.app = RecordingApp(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.admin = self.client("iam")

    def client(self, service: str) -> Any:
        """A boto3 client of this endpoint for `service`, signed by the admin identity (moto
        answers IAM, STS, Secrets Manager, SSM and EventBridge Scheduler)."""
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id=ADMIN_KEY_ID,
            aws_secret_access_key=ADMIN_SECRET,
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()

    def connection(self, **overrides: str) -> dict[str, str]:
        """An engine connection to this endpoint, signed by the admin identity."""
        base = {
            "access_key_id": ADMIN_KEY_ID,
            "secret_access_key": ADMIN_SECRET,
            "region": "us-east-1",
            "endpoint_url": self.url,
        }
        return {**base, **overrides}

    def new_user(self) -> str:
        name = f"user-{uuid.uuid4().hex[:12]}"
        self.admin.create_user(UserName=name)
        return name

    def key_ids(self, user_name: str) -> list[str]:
        listed = self.admin.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
        return sorted(key["AccessKeyId"] for key in listed)

    def actions(self) -> list[str]:
        with self.app.lock:
            return [exchange.action for exchange in self.app.exchanges]

    def mark(self) -> int:
        """A point in the request log; `since(mark)` lists what came after it."""
        with self.app.lock:
            return len(self.app.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self.app.lock:
            return list(self.app.exchanges[mark:])
