"""Sign in to AWS the way the connection says: one of the four ways automation platforms use.

1. an access key (with an optional session token);
2. a role assumed with the runner's own identity, with an external ID;
3. a role assumed with an access key;
4. the runner's own identity: environment, profile, container or instance role, web identity.

Assumed-role credentials are cached per source identity and role until shortly before they
expire (botocore refreshes them), so a worker running many steps does not call STS each time.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from .clients import USER_AGENT, refuse_clear_text
from .errors import ActionError, Category
from .request import Connection

DEFAULT_SESSION_NAME = "iam-create-access-key"
DEFAULT_DURATION_SECONDS = 3600


class _AssumedRoleCredentials(RefreshableCredentials):
    """Refreshed 5 minutes before expiry (botocore's default, 15, is the whole life of the
    shortest role session, 900 s, which would mean an AssumeRole on every use)."""

    _advisory_refresh_timeout = 5 * 60
    _mandatory_refresh_timeout = 2 * 60


_assumed: dict[tuple[str, ...], RefreshableCredentials] = {}
_assumed_lock = threading.Lock()


def session_for(connection: Connection) -> boto3.session.Session:
    """A session that signs as the connection says (assuming its role, if it names one)."""
    base = boto3.session.Session(
        aws_access_key_id=connection.access_key_id,
        aws_secret_access_key=connection.secret_access_key,
        aws_session_token=connection.session_token,
        region_name=connection.region,
    )
    if not connection.role_arn:
        return base
    botocore_session = botocore.session.Session()
    provider = _Assumed(_assumed_role_credentials(base, connection))
    botocore_session.register_component("credential_provider", CredentialResolver([provider]))
    return boto3.session.Session(botocore_session=botocore_session, region_name=connection.region)


def credential_secrets(session: boto3.session.Session) -> tuple[str, ...]:
    """The secret key and session token the session will sign with, wherever they came from.

    Resolving them here also makes an assumed role's AssumeRole happen before anything else.
    """
    credentials = session.get_credentials()
    if credentials is None:
        return ()
    frozen = credentials.get_frozen_credentials()
    return tuple(value for value in (frozen.secret_key, frozen.token) if value)


class _Assumed(CredentialProvider):
    """Hands botocore the cached, self-refreshing credentials of an assumed role."""

    METHOD = "assume-role"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _assumed_role_credentials(
    base: boto3.session.Session, connection: Connection
) -> RefreshableCredentials:
    key = _cache_key(base, connection)
    with _assumed_lock:
        cached = _assumed.get(key)
        if cached is None:
            cached = _AssumedRoleCredentials.create_from_metadata(
                metadata=_assume_role(base, connection),
                refresh_using=lambda: _assume_role(base, connection),
                method="assume-role",
            )
            _assumed[key] = cached
    return cached


def _cache_key(base: boto3.session.Session, connection: Connection) -> tuple[str, ...]:
    """Who assumes which role how; the source secret only as a digest."""
    source = base.get_credentials()
    if source is None:
        raise ActionError(
            f"AssumeRole into {connection.role_arn} failed: no AWS credentials found to assume "
            "it with (give an access key in the connection, or run with an AWS identity)",
            Category.REJECTED,
        )
    frozen = source.get_frozen_credentials()
    digest = hashlib.sha256(f"{frozen.secret_key}\0{frozen.token}".encode()).hexdigest()
    return (
        str(frozen.access_key),
        digest,
        str(connection.role_arn),
        connection.external_id or "",
        connection.role_session_name or DEFAULT_SESSION_NAME,
        str(connection.duration_seconds or DEFAULT_DURATION_SECONDS),
        connection.endpoint_url or "",
        connection.region or "",
    )


def _assume_role(base: boto3.session.Session, connection: Connection) -> dict[str, Any]:
    """Call sts:AssumeRole; return credentials in the shape botocore refreshes from."""
    client = base.client(
        "sts",
        region_name=connection.region or base.region_name or "us-east-1",
        endpoint_url=connection.endpoint_url,
        config=Config(user_agent_extra=USER_AGENT, retries={"mode": "standard"}),
    )
    refuse_clear_text(client.meta.endpoint_url)
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
        details = error.response.get("Error", {})
        raise ActionError(
            f"AssumeRole into {connection.role_arn} was refused: {details.get('Code')}: "
            f"{details.get('Message', '')}".rstrip(": ")
            + _external_id_hint(connection, str(details.get("Code"))),
            Category.REJECTED,
            aws_code=str(details.get("Code")),
        ) from None
    except BotoCoreError as error:
        raise ActionError(
            f"AssumeRole into {connection.role_arn} failed: {type(error).__name__}",
            Category.TRANSIENT,
        ) from None
    return {
        "access_key": issued["AccessKeyId"],
        "secret_key": issued["SecretAccessKey"],
        "token": issued["SessionToken"],
        "expiry_time": issued["Expiration"].isoformat(),
    }


def _external_id_hint(connection: Connection, code: str) -> str:
    if code != "AccessDenied":
        return ""
    if connection.external_id:
        return " (check that the external ID is the one the role's trust policy expects)"
    return " (if the role's trust policy asks for an external ID, give it in the connection)"


def forget_assumed_roles() -> None:
    """Drop every cached assumed-role credential (tests; a worker rotating its identity)."""
    with _assumed_lock:
        _assumed.clear()
