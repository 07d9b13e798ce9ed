"""Sign in to AWS the way the connection says: one of the four ways automation platforms use.

1. an access key (with an optional session token);
2. a role assumed with the runner's own identity, with an external ID;
3. a role assumed with an access key;
4. the runner's own identity: environment, profile, container or instance role, web identity.

botocore's session is used directly (boto3's adds only its resource layer and s3transfer, a
third of the start-up time of a short process). Sessions are kept per identity, and
assumed-role credentials until shortly before they expire (botocore refreshes them), so a worker
running many steps neither re-reads its configuration nor calls STS each time.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from plugin.contract.errors import ActionError, Category
from plugin.contract.request import Connection
from plugin.runtime import deadline

from . import clients
from .client_errors import aws_code, aws_reason, translate
from .clients import USER_AGENT
from .services import name_services

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

DEFAULT_SESSION_NAME = "iam-create-access-key"
DEFAULT_DURATION_SECONDS = 3600
Session = botocore.session.Session

MAX_SESSIONS = 64  # a worker serving many tenants keeps the most recent ones
# One loader of botocore's data (service models, endpoints) for every session the action makes:
# a session loads and keeps its own copy otherwise, 12 MiB with an IAM and an STS client, and
# a caller sending new credentials on every call filled the kept sessions to 1.9 GiB (the ninth
# red team); shared, a session costs about 130 KiB (its clients are kept apart: clients.py).
_LOADER = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))
_sessions: collections.OrderedDict[tuple[str, ...], Session] = collections.OrderedDict()
_pending: dict[tuple[str, ...], _Pending] = {}
_lock = threading.Lock()  # held only to read and write the two dicts above


class _AssumedRoleCredentials(RefreshableCredentials):
    """Refreshed 5 minutes before expiry (botocore's default, 15, is the whole life of the
    shortest role session, 900 s, which would mean an AssumeRole on every use)."""

    _advisory_refresh_timeout = 5 * 60
    _mandatory_refresh_timeout = 2 * 60


def session_for(connection: Connection) -> Session:
    """The (cached) session that signs as the connection says, assuming its role if any.

    The lock is held only to look up and to store, never across AssumeRole: a tenant whose
    endpoint drips its STS answer delays its own calls, never another role's. Concurrent
    calls for the same role share one AssumeRole (whoever comes first makes it; the others
    wait for it within their own time)."""
    key = _cache_key(connection)
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            _sessions.move_to_end(key)
            return session
        pending = _pending.get(key)
        first = pending is None
        if pending is None:
            pending = _pending[key] = _Pending()
    if not first:
        return pending.result(connection)
    try:
        session = _new_session(connection)
    except BaseException as error:
        pending.error = error
        raise
    else:
        pending.session = session
        with _lock:
            _sessions[key] = session
            dropped = _sessions.popitem(last=False)[1] if len(_sessions) > MAX_SESSIONS else None
        if dropped is not None:
            clients.forget_session(dropped)
        return session
    finally:
        with _lock:
            _pending.pop(key, None)
        pending.done.set()


class _Pending:
    """A session being made (its AssumeRole under way) that other calls for it wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.session: Session | None = None
        self.error: BaseException | None = None

    def result(self, connection: Connection) -> Session:
        """The session, once made; the maker's error; or, if the waiting call's own time
        runs out first, a TRANSIENT ActionError."""
        bound = deadline.current()
        if not self.done.wait(None if bound is None else bound.remaining()):
            raise ActionError(
                f"AssumeRole into {connection.role_arn} failed: another call's AssumeRole for "
                "the same role did not finish within this call's time",
                Category.TRANSIENT,
            )
        if self.error is not None:
            raise self.error
        assert self.session is not None
        return self.session


# The environment variables botocore reads to decide who signs, where, and how; a session is
# kept per their values too, since they are the identity when the connection names none.
_ENVIRONMENT = tuple(
    f"AWS_{name}"
    for name in (
        "PROFILE", "DEFAULT_PROFILE", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN",
        "SECURITY_TOKEN", "REGION", "DEFAULT_REGION", "CONFIG_FILE", "SHARED_CREDENTIALS_FILE",
        "ENDPOINT_URL", "ENDPOINT_URL_IAM", "ENDPOINT_URL_STS", "IGNORE_CONFIGURED_ENDPOINT_URLS",
        "ROLE_ARN", "ROLE_SESSION_NAME", "WEB_IDENTITY_TOKEN_FILE",
        "CONTAINER_CREDENTIALS_FULL_URI", "CONTAINER_CREDENTIALS_RELATIVE_URI",
        "CONTAINER_AUTHORIZATION_TOKEN", "CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "EC2_METADATA_DISABLED", "USE_FIPS_ENDPOINT", "USE_DUALSTACK_ENDPOINT",
        "STS_REGIONAL_ENDPOINTS", "CA_BUNDLE",
    )
)  # fmt: skip


_ENVIRONMENT_BYTES = tuple(name.encode() for name in _ENVIRONMENT)


def _environment() -> bytes:
    """The values of _ENVIRONMENT. os.environ.get costs ~0.6 us a name (a KeyError raised and
    caught for each one unset): 15 us a call, a fortieth of a warm invocation. CPython's
    os.environ keeps its raw bytes in `_data`, read here when it is there."""
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict):
        return b"\0".join(raw.get(name) or b"" for name in _ENVIRONMENT_BYTES)
    return "\0".join(os.environ.get(name) or "" for name in _ENVIRONMENT).encode()


def _cache_key(connection: Connection) -> tuple[str, ...]:
    """Who signs in how: the connection and the AWS environment, secrets only as a digest."""
    digest = hashlib.sha256(
        b"\0".join(
            (
                (connection.secret_access_key or "").encode(),
                (connection.session_token or "").encode(),
                _environment(),
            )
        )
    ).hexdigest()
    fields = (
        connection.access_key_id,
        connection.region,
        connection.endpoint_url,
        connection.role_arn,
        connection.external_id,
        connection.role_session_name,
        str(connection.duration_seconds or ""),
    )
    return (digest, *(field or "" for field in fields))


def _session() -> Session:
    """A session of the shared loader, whose errors name the service and endpoint that failed."""
    session = botocore.session.Session()
    session.register_component("data_loader", _LOADER)
    name_services(session)
    return session


def _new_session(connection: Connection) -> Session:
    base = _session()
    if connection.region:
        base.set_config_variable("region", connection.region)
    if connection.access_key_id:
        base.set_credentials(
            connection.access_key_id, connection.secret_access_key or "", connection.session_token
        )
    if not connection.role_arn:
        return base
    if base.get_credentials() is None:
        raise ActionError(
            f"AssumeRole into {connection.role_arn} failed: no AWS credentials found to assume "
            "it with (give an access key in the connection, or run with an AWS identity)",
            Category.REJECTED,
        )
    credentials = _AssumedRoleCredentials.create_from_metadata(
        metadata=_assume_role(base, connection),
        refresh_using=lambda: _assume_role(base, connection),
        method="assume-role",
    )
    assumed = _session()
    if connection.region:
        assumed.set_config_variable("region", connection.region)
    assumed.register_component("credential_provider", CredentialResolver([_Fixed(credentials)]))
    return assumed


def signed_in(connection: Connection, guard: Callable[[str], None]) -> Session:
    """The connection's session, with every secret it signs with handed to `guard` (the
    redactor's), wherever it came from: connection, environment, profile or assumed role."""
    session = session_for(connection)
    for secret in credential_secrets(session):
        guard(secret)
    return session


def credential_secrets(session: Session) -> tuple[str, ...]:
    """The secret key and session token the session will sign with, wherever they came from.

    Resolving them here also makes an assumed role's AssumeRole happen before anything else.
    """
    credentials = session.get_credentials()
    if credentials is None:
        return ()
    frozen = credentials.get_frozen_credentials()
    return tuple(value for value in (frozen.secret_key, frozen.token) if value)


def default_region(session: Session) -> str | None:
    region: str | None = session.get_config_variable("region")
    return region


class _Fixed(CredentialProvider):
    """Hands botocore the cached, self-refreshing credentials of an assumed role."""

    METHOD = "assume-role"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _assume_role(base: Session, connection: Connection) -> dict[str, Any]:
    """Call sts:AssumeRole; return credentials in the shape botocore refreshes from."""
    client = sts_client(base, connection)
    arguments: dict[str, Any] = {
        "RoleArn": connection.role_arn,
        "RoleSessionName": connection.role_session_name or DEFAULT_SESSION_NAME,
        "DurationSeconds": connection.duration_seconds or DEFAULT_DURATION_SECONDS,
    }
    if connection.external_id:
        arguments["ExternalId"] = connection.external_id
    try:
        issued = client.assume_role(**arguments)["Credentials"]
    except ClientError as error:
        raise ActionError(
            f"AssumeRole into {connection.role_arn} was refused: {aws_reason(error)}"
            + _external_id_hint(connection, aws_code(error)),
            Category.REJECTED,
            aws_code=aws_code(error),
        ) from None
    except BotoCoreError as error:
        raise ActionError(
            f"AssumeRole into {connection.role_arn} failed: " + translate(error).reason,
            Category.TRANSIENT,
        ) from None
    return {
        "access_key": issued["AccessKeyId"],
        "secret_key": issued["SecretAccessKey"],
        "token": issued["SessionToken"],
        "expiry_time": issued["Expiration"].isoformat(),
    }


def sts_client(session: Session, connection: Connection) -> STSClient:
    """An STS client for the connection's endpoint and region."""
    client = cast(
        "STSClient",
        session.create_client(
            "sts",
            region_name=connection.region or default_region(session) or "us-east-1",
            endpoint_url=connection.endpoint_url,
            config=Config(retries={"mode": "standard"}, user_agent_extra=USER_AGENT),
        ),
    )
    clients.guard(client)  # AssumeRole keeps to the invocation's time (serve)
    return client


def _external_id_hint(connection: Connection, code: str) -> str:
    if code != "AccessDenied":
        return ""
    if connection.external_id:
        return " (check that the external ID is the one the role's trust policy expects)"
    return " (if the role's trust policy asks for an external ID, give it in the connection)"


def forget() -> None:
    """Drop every cached session and assumed-role credential (tests; a rotated identity)."""
    with _lock:
        _sessions.clear()
