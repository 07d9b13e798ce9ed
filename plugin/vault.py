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


def target(text: str) -> tuple[str, str]:
    """("secretsmanager" | "ssm", name) from the parameter's "service:name"."""
    service, _, name = text.partition(":")
    return service, name


def hand_over(
    session: Any, connection: Connection, region: str, text: str, key: dict[str, Any]
) -> dict[str, Any]:
    """Write {"AccessKeyId", "SecretAccessKey"} to the vault; return where (the Vault shape)."""
    service, name = target(text)
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url=connection.endpoint_url,
        config=Config(retries={"mode": "standard"}, user_agent_extra=USER_AGENT),
    )
    refuse_clear_text(client.meta.endpoint_url)
    document = json.dumps(
        {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    )
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
