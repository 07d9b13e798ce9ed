"""One invocation of IAM Create Access Key, from a checked request to a checked result."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from . import (
    clients,
    dry_run,
    failures,
    limit,
    redaction,
    regions,
    resources,
    seal,
    sessions,
    validation,
    vault,
)
from .create import Created, create_access_key
from .deadline import Deadline
from .errors import ActionError, Category
from .request import Parameters, Request

log = logging.getLogger(__name__)


def run(request: Request) -> dict[str, Any] | str:
    """Create exactly one access key; return {"AccessKey": ...} or IAM's raw XML document."""
    parameters, connection = request.parameters, request.connection
    deadline = Deadline(request.timeout)
    head = failures.headline(parameters.user_name)
    with redaction.redactor().guarding(*connection.secrets()) as guard:
        try:
            session = sessions.session_for(connection)
            for secret in sessions.credential_secrets(session):
                guard(secret)  # credentials from the environment or a profile are secrets too
            plan = regions.plan(
                parameters.regions, connection.region or sessions.default_region(session)
            )
            log.debug("partition %s, signing region %s", plan.partition, plan.signing_region)
            client = clients.iam_client(
                session, plan.signing_region, connection.endpoint_url, deadline
            )
            if parameters.check_only:
                return _checked(dry_run.report(session, client, connection, parameters), head)
            created, deleted = _create_making_room(client, parameters, deadline, head)
        except Exception as error:
            # `from None`: the cause may quote a response body or a credential.
            raise failures.translate(error, head) from None
        guard(str(created.document["AccessKey"]["SecretAccessKey"]))
        log.debug("created access key %s", created.document["AccessKey"]["AccessKeyId"])
        document = created.document
        if parameters.status != document["AccessKey"]["Status"]:
            document = _with_status(document, parameters.status, client, head)
        if parameters.seal_secret_to:
            document = _sealed(document, parameters.seal_secret_to, client, head)
        elif parameters.vault:
            region = connection.region or sessions.default_region(session) or plan.signing_region
            where = _handed_over(session, connection, region, parameters.vault, document, client)
            document = {"AccessKey": _without_secret(document), "Vault": where}
    if parameters.disable_xml_to_json:
        return created.body.decode("utf-8")
    result = _in_schema_order(document)
    if deleted:
        result["DeletedAccessKeyId"] = deleted
    return result


def _checked(result: dict[str, Any], head: str) -> dict[str, Any]:
    problems = validation.problems("output", result, "result")
    if problems:  # a bug of this plugin's: the check's shape is its own
        raise ActionError(f"{head}: internal error ({'; '.join(problems)})", Category.INTERNAL)
    return result


def _create_making_room(
    client: Any, parameters: Parameters, deadline: Deadline, head: str
) -> tuple[Created, str | None]:
    """Create the key; at the two-key limit, apply the at_limit policy (which may delete the
    oldest Inactive key, whose id is returned) and create it then."""
    try:
        return create_access_key(client, parameters.user_name, deadline, head), None
    except ClientError as error:
        if not limit.is_limit(error):
            raise
        refusal = failures.translate(error, head).message
        deleted = limit.make_room(client, parameters.user_name, parameters.at_limit, refusal)
        return create_access_key(client, parameters.user_name, deadline, head), deleted


def _with_status(document: dict[str, Any], status: str, client: Any, head: str) -> dict[str, Any]:
    """Set the new key's status; if IAM refuses, delete the key rather than leave it Active."""
    fields = dict(document["AccessKey"])
    key_id, user = fields["AccessKeyId"], fields["UserName"]
    try:
        client.update_access_key(AccessKeyId=key_id, UserName=user, Status=status)
    except Exception as error:
        _delete_undelivered(client, key_id, user)
        why = failures.translate(error, f"UpdateAccessKey to {status}").message
        raise ActionError(
            f"{head}: {why}; key {key_id} was deleted, so nothing is left behind",
            Category.REJECTED if isinstance(error, ClientError) else Category.TRANSIENT,
        ) from None
    fields["Status"] = status  # IAM accepted it: the key's status now
    return {"AccessKey": fields}


def _sealed(document: dict[str, Any], recipient: str, client: Any, head: str) -> dict[str, Any]:
    """The result with the secret sealed; if sealing fails, the key is deleted, not lost."""
    fields = dict(document["AccessKey"])
    try:
        fields["SealedSecretAccessKey"] = seal.seal(fields.pop("SecretAccessKey"), recipient)
    except Exception as error:
        key_id, user = fields["AccessKeyId"], fields["UserName"]
        _delete_undelivered(client, key_id, user)
        raise ActionError(
            f"{head}: the secret could not be sealed ({type(error).__name__}); key {key_id} was "
            "deleted, so nothing is left behind",
            Category.INTERNAL,
        ) from None
    return {"AccessKey": fields}


def _without_secret(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document["AccessKey"].items() if k != "SecretAccessKey"}


def _handed_over(
    session: Any,
    connection: Any,
    region: str,
    target: str,
    document: dict[str, Any],
    client: Any,
) -> dict[str, Any]:
    """Write the key to the vault; if that fails, delete the key: nothing orphaned, nothing lost."""
    key = document["AccessKey"]
    try:
        return vault.hand_over(session, connection, region, target, key)
    except Exception as error:
        _delete_undelivered(client, key["AccessKeyId"], key["UserName"])
        why = failures.translate(error, f"writing to {target}").message
        raise ActionError(
            f"{failures.headline(key['UserName'])}: {why}; key {key['AccessKeyId']} was "
            "deleted, so nothing is left behind",
            Category.REJECTED if isinstance(error, ClientError) else Category.TRANSIENT,
        ) from None


def _delete_undelivered(client: Any, key_id: str, user: str) -> None:
    """A key whose secret will not be delivered must not outlive the invocation."""
    try:
        client.delete_access_key(AccessKeyId=key_id, UserName=user)
    except Exception as error:
        raise ActionError(
            f"key {key_id} was created but cannot be delivered, and deleting it failed "
            f"({type(error).__name__}): delete it (aws iam delete-access-key --access-key-id "
            f"{key_id} --user-name {user})",
            Category.TRANSIENT,
        ) from None


def _in_schema_order(document: dict[str, Any]) -> dict[str, Any]:
    """The AccessKey fields in the documented order, then any field IAM adds later."""
    order = list(resources.schema("output")["properties"]["AccessKey"]["properties"])
    fields = document["AccessKey"]
    ranked = sorted(fields, key=lambda name: order.index(name) if name in order else len(order))
    return {**document, "AccessKey": {name: fields[name] for name in ranked}}
