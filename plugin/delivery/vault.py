"""Hand the new secret to a vault: AWS Secrets Manager or an SSM Parameter Store SecureString.

The key id and secret are written as one JSON document in the same invocation; the result says
only where. The caller deletes the key if the write fails (see invocation/run.py): nothing orphaned.

The hand-off never overwrites what it did not create: it writes a new secret or parameter
(tagged as this action's), or a new version of one that carries that tag. Any other existing
target is refused before the key is created (`ensure_ours`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from plugin.aws.client_errors import aws_code
from plugin.aws.clients import USER_AGENT, guard
from plugin.contract.errors import ActionError, Category
from plugin.contract.request import Connection

SECRETS_MANAGER = "secretsmanager"
SSM = "ssm"
# What the vault document holds of the AccessKey: its id and every secret derived with it.
VAULTED = ("AccessKeyId", "SecretAccessKey", "SesSmtpPasswordV4")
log = logging.getLogger(__name__)

# The tag that marks a secret or parameter as this action's to write new versions of.
OWNER_TAG = {"Key": "created-by", "Value": "iam-create-access-key"}


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the secret goes, and whether that place exists already (then it is ours)."""

    service: str
    name: str
    exists: bool


def target(text: str) -> tuple[str, str]:
    """("secretsmanager" | "ssm", name) from the parameter's "service:name"."""
    service, _, name = text.partition(":")
    return service, name


def outside(text: str, prefixes: tuple[str, ...]) -> bool:
    """Whether the target's name starts with none of an operator's `prefixes` (none set: it
    is never outside)."""
    _, name = target(text)
    return bool(prefixes) and not any(name.startswith(prefix) for prefix in prefixes)


def holding(
    session: Any, connection: Connection, region: str, text: str, key_id: str
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """Where the vault holds key `key_id` (the Vault shape) and the secrets read there, or None
    when it holds another key or nothing (an earlier attempt's secret is safe only if so).

    The target's ownership tag is checked first, as the write checks it (`ensure_ours`): what
    someone else wrote there, a key id of ours included, is never taken for our own (refused,
    code 3)."""
    if not ensure_ours(session, connection, region, text).exists:
        return None
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


def ensure_ours(session: Any, connection: Connection, region: str, text: str) -> Target:
    """The vault target, checked before anything is created: new, or an existing one that
    carries OWNER_TAG. Any other existing target is refused (ActionError, code 3)."""
    service, name = target(text)
    client = _client(session, connection, region, service)
    if service == SSM:
        found = client.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
        )["Parameters"]
        if not found:
            return Target(service, name, exists=False)
        tags = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    else:
        try:
            tags = client.describe_secret(SecretId=name).get("Tags", [])
        except ClientError as error:
            if aws_code(error) != "ResourceNotFoundException":
                raise
            return Target(service, name, exists=False)
    if OWNER_TAG not in tags:
        raise ActionError(
            f"parameters.vault: {text} exists and was not created by this action (it has no tag "
            f"{OWNER_TAG['Key']}={OWNER_TAG['Value']}); it is never overwritten, so nothing was "
            "created: name a new secret or parameter",
            Category.REJECTED,
        )
    return Target(service, name, exists=True)


def _client(session: Any, connection: Connection, region: str, service: str) -> Any:
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url=connection.endpoint_url,
        config=Config(retries={"mode": "standard"}, user_agent_extra=USER_AGENT),
    )
    guard(client)  # checks and writes keep to the invocation's time (serve)
    return client


def hand_over(
    session: Any, connection: Connection, region: str, place: Target, key: dict[str, Any]
) -> dict[str, Any]:
    """Write {"AccessKeyId", "SecretAccessKey"} (and "SesSmtpPasswordV4", when the key has one)
    to the vault target `ensure_ours` returned; return where (the Vault shape). A target made
    by someone else since the check is refused by AWS itself (never overwritten)."""
    client = _client(session, connection, region, place.service)
    document = json.dumps({field: key[field] for field in VAULTED if field in key})
    if place.service == SSM:
        if place.exists:
            written = client.put_parameter(
                Name=place.name, Value=document, Type="SecureString", Overwrite=True
            )
        else:  # Overwrite=False: AWS refuses if the name was taken meanwhile
            written = client.put_parameter(
                Name=place.name, Value=document, Type="SecureString", Tags=[OWNER_TAG]
            )
        log.info(
            "the key is in ssm:%s, version %s (%s)",
            place.name,
            written["Version"],
            "a new version" if place.exists else "a new parameter",
        )
        return {"ParameterName": place.name, "ParameterVersion": int(written["Version"])}
    if place.exists:
        written = client.put_secret_value(SecretId=place.name, SecretString=document)
    else:
        written = client.create_secret(Name=place.name, SecretString=document, Tags=[OWNER_TAG])
    log.info(
        "the key is in secretsmanager:%s, version %s (%s)",
        place.name,
        written["VersionId"],
        "a new version" if place.exists else "a new secret",
    )
    return {"SecretArn": written["ARN"], "VersionId": written["VersionId"]}
