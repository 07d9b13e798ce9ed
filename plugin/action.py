"""One invocation of IAM Create Access Key, from a checked request to a checked result."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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
from .request import Connection, Parameters, Request

log = logging.getLogger(__name__)


def run(request: Request) -> dict[str, Any] | str:
    """Create exactly one access key; return {"AccessKey": ...} or IAM's raw XML document."""
    parameters, connection = request.parameters, request.connection
    deadline = Deadline(request.timeout)
    head = failures.headline(parameters.user_name)
    with redaction.redactor().guarding(*connection.secrets()) as guard:
        try:
            session = sessions.signed_in(connection, guard)
            home_region = connection.region or sessions.default_region(session)
            plan = regions.plan(parameters.regions, home_region)
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
        key = dict(created.document["AccessKey"])
        vault_region = home_region or plan.signing_region
        document = _finish(key, parameters, client, session, connection, vault_region, head)
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


def _finish(
    key: dict[str, Any],
    parameters: Parameters,
    client: Any,
    session: Any,
    connection: Connection,
    region: str,
    head: str,
) -> dict[str, Any]:
    """Apply the options that act on the new key: its status, then where its secret goes.

    If one of them fails, the key is deleted: nothing orphaned, nothing lost.
    """
    extra: dict[str, Any] = {}
    if parameters.status != key["Status"]:
        with _deleted_if_it_fails(client, key, head, f"UpdateAccessKey to {parameters.status}"):
            client.update_access_key(
                AccessKeyId=key["AccessKeyId"], UserName=key["UserName"], Status=parameters.status
            )
        key["Status"] = parameters.status  # IAM accepted it: the key's status now
    if parameters.seal_secret_to:
        with _deleted_if_it_fails(client, key, head, "the secret could not be sealed"):
            secret = key.pop("SecretAccessKey")
            key["SealedSecretAccessKey"] = seal.seal(secret, parameters.seal_secret_to)
    elif parameters.vault:
        with _deleted_if_it_fails(client, key, head, f"writing to {parameters.vault}"):
            extra["Vault"] = vault.hand_over(session, connection, region, parameters.vault, key)
        del key["SecretAccessKey"]
    return {"AccessKey": key, **extra}


@contextlib.contextmanager
def _deleted_if_it_fails(client: Any, key: dict[str, Any], head: str, step: str) -> Iterator[None]:
    """One step of delivering the new key; if it fails, the key is deleted and the error says
    so. AWS's refusals are REJECTED, unreachable AWS TRANSIENT, anything else a bug."""
    try:
        yield
    except Exception as error:
        _delete_undelivered(client, key["AccessKeyId"], key["UserName"])
        if isinstance(error, ClientError):
            why, category = failures.translate(error, step).message, Category.REJECTED
        elif isinstance(error, BotoCoreError):
            why, category = failures.translate(error, step).message, Category.TRANSIENT
        else:
            why, category = f"{step} ({type(error).__name__})", Category.INTERNAL
        raise ActionError(
            f"{head}: {why}; key {key['AccessKeyId']} was deleted, so nothing is left behind",
            category,
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
