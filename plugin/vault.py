"""Hand the new secret to a vault: AWS Secrets Manager or an SSM Parameter Store SecureString.

The key id and secret are written as one JSON document in the same invocation; the result says
only where. The caller deletes the key if the write fails (see action.py): nothing orphaned.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from .clients import USER_AGENT, refuse_clear_text
from .failures import aws_code
from .request import Connection

SECRETS_MANAGER = "secretsmanager"
SSM = "ssm"
# What the vault document holds of the AccessKey: its id and every secret derived with it.
VAULTED = ("AccessKeyId", "SecretAccessKey", "SesSmtpPasswordV4")


def target(text: str) -> tuple[str, str]:
    """("secretsmanager" | "ssm", name) from the parameter's "service:name"."""
    service, _, name = text.partition(":")
    return service, name


def holding(
    session: Any, connection: Connection, region: str, text: str, key_id: str
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """Where the vault holds key `key_id` (the Vault shape) and the secrets read there, or None
    when it holds another key or nothing (an earlier attempt's secret is safe only if so)."""
    service, name = target(text)
    client = _client(session, connection, region, service)
    try:
        if service == SSM:
            parameter = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
            stored, where = (
                parameter["Value"],
                {
                    "ParameterName": name,
                    "ParameterVersion": int(parameter["Version"]),
                },
            )
        else:
            secret = client.get_secret_value(SecretId=name)
            stored, where = (
                secret["SecretString"],
                {
                    "SecretArn": secret["ARN"],
                    "VersionId": secret["VersionId"],
                },
            )
    except ClientError as error:
        if aws_code(error) in ("ParameterNotFound", "ResourceNotFoundException"):
            return None
        raise
    try:
        document = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("AccessKeyId") != key_id:
        return None
    secrets = tuple(str(document[field]) for field in VAULTED[1:] if field in document)
    return where, secrets


def _client(session: Any, connection: Connection, region: str, service: str) -> Any:
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url=connection.endpoint_url,
        config=Config(retries={"mode": "standard"}, user_agent_extra=USER_AGENT),
    )
    refuse_clear_text(client.meta.endpoint_url)
    return client


def hand_over(
    session: Any, connection: Connection, region: str, text: str, key: dict[str, Any]
) -> dict[str, Any]:
    """Write {"AccessKeyId", "SecretAccessKey"} (and "SesSmtpPasswordV4", when the key has one)
    to the vault; return where (the Vault shape)."""
    service, name = target(text)
    client = _client(session, connection, region, service)
    document = json.dumps({field: key[field] for field in VAULTED if field in key})
    if service == SSM:
        written = client.put_parameter(
            Name=name, Value=document, Type="SecureString", Overwrite=True
        )
        return {"ParameterName": name, "ParameterVersion": int(written["Version"])}
    try:
        written = client.put_secret_value(SecretId=name, SecretString=document)
    except ClientError as error:
        if aws_code(error) != "ResourceNotFoundException":
            raise
        written = client.create_secret(Name=name, SecretString=document)
    return {"SecretArn": written["ARN"], "VersionId": written["VersionId"]}
