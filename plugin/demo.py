"""The demo: a workflow of two steps, "IAM Create User" then this action, on a local IAM.

No AWS account and no network: moto's server is started on 127.0.0.1 (a free port), the two
steps run against it, both outputs are printed, and the server is stopped.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from .errors import ActionError, Category

# moto accepts any credentials; these only have to look like a key pair to botocore.
DEMO_CONNECTION = {
    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "secret_access_key": "demo-local-endpoint-not-a-secret",
    "region": "us-east-1",
}


# The chain "create user, then its key" is where IAM's eventual consistency bites: wait for it.
DEMO_WAIT_FOR_USER = 10


def run_demo(options: dict[str, Any] | None = None) -> int:
    """Run the two-step workflow; return the action's error code.

    `options` are more parameters for the action's step (sealing, a vault, a status, ...):
    moto's server answers Secrets Manager and SSM too.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ActionError(
            "the demo needs moto's server: pip install 'iam-create-access-key[demo]'",
            Category.REJECTED,
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the terminal
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        connection = {**DEMO_CONNECTION, "endpoint_url": f"http://{host}:{port}"}
        print(f"Local IAM endpoint (moto) on {connection['endpoint_url']}\n")
        user = _create_user_step(connection)
        _show("Step 1: IAM Create User", user)
        from .engine import execute

        parameters = {
            "regions": "us-east-1",
            "user_name": user["User"]["UserName"],
            "wait_for_user": DEMO_WAIT_FOR_USER,
            **(options or {}),
        }
        print(
            f"Step 2 waits up to {parameters['wait_for_user']} s for IAM to show the new user "
            "(wait_for_user): real IAM may answer NoSuchEntity for a few seconds after Create "
            "User. moto shows it at once.\n"
        )
        if parameters.get("expires_after") and not parameters.get("expiry_role_arn"):
            parameters["expiry_role_arn"] = _expiry_role_step(connection)
        request = {"parameters": parameters, "connection": connection}
        _show("Step 2: IAM Create Access Key (engine request)", _without_secrets(request))
        response = execute(request)
        _show("Step 2: IAM Create Access Key (engine response)", response)
        if response["error_code"] == 0 and "Expires" in response["result"]:
            _show_schedule(connection, response["result"]["Expires"]["ScheduleArn"])
        return int(response["error_code"])
    finally:
        server.stop()


def _create_user_step(connection: dict[str, str]) -> dict[str, Any]:
    """What the "IAM Create User" step of a workflow would do and output."""
    import boto3

    client = boto3.client(
        "iam",
        region_name=connection["region"],
        endpoint_url=connection["endpoint_url"],
        aws_access_key_id=connection["access_key_id"],
        aws_secret_access_key=connection["secret_access_key"],
    )
    response = client.create_user(UserName=f"demo-user-{secrets.token_hex(3)}")
    return {"User": response["User"]}


# The execution role an operator makes once for Expires After (README: Expires After).
_EXPIRY_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _expiry_role_step(connection: dict[str, str]) -> str:
    """The demo's expiry role (moto checks neither its trust nor its permissions)."""
    import boto3

    client = boto3.client(
        "iam",
        region_name=connection["region"],
        endpoint_url=connection["endpoint_url"],
        aws_access_key_id=connection["access_key_id"],
        aws_secret_access_key=connection["secret_access_key"],
    )
    role = client.create_role(
        RoleName=f"demo-key-expiry-{secrets.token_hex(3)}",
        AssumeRolePolicyDocument=json.dumps(_EXPIRY_TRUST),
    )["Role"]
    print(f"Expiry role for EventBridge Scheduler: {role['Arn']}\n")
    return str(role["Arn"])


def _show_schedule(connection: dict[str, str], arn: str) -> None:
    """What AWS will run at the key's expiry, read back from the scheduler."""
    import boto3

    client = boto3.client(
        "scheduler",
        region_name=arn.split(":")[3],
        endpoint_url=connection["endpoint_url"],
        aws_access_key_id=connection["access_key_id"],
        aws_secret_access_key=connection["secret_access_key"],
    )
    schedule = client.get_schedule(Name=arn.rsplit("/", 1)[1])
    schedule.pop("ResponseMetadata", None)
    _show("Step 3: the expiry schedule (EventBridge Scheduler GetSchedule)", schedule)


def _without_secrets(request: dict[str, Any]) -> dict[str, Any]:
    connection = {**request["connection"], "secret_access_key": "***"}
    return {**request, "connection": connection}


def _show(title: str, document: Any) -> None:
    print(f"== {title}")
    print(json.dumps(document, indent=2, default=_iso))
    print()


def _iso(value: Any) -> str:
    """boto3 parses dates into datetimes; a workflow step outputs them as ISO 8601 text."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
