"""The demo: a workflow of two steps, "IAM Create User" then this action, on a local IAM.

No AWS account and no network: moto's server is started on 127.0.0.1 (a free port), the two
steps run against it, both outputs are printed, and the server is stopped.

Each option given is shown at work: SHOWINGS says, per parameter, what stage it needs (keys
already on the user, say), how many times the step runs, what is done after it (the vault read
back, the sealed secret opened) and, in one line, what it shows. A new option gets a Showing
of its own; one without says that its effect is in the step's response.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plugin.contract.errors import ActionError, Category

if TYPE_CHECKING:
    from plugin.engine import Response

# moto accepts any credentials; these only have to look like a key pair to botocore.
DEMO_CONNECTION = {
    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "secret_access_key": "demo-local-endpoint-not-a-secret",
    "region": "us-east-1",
}


# The chain "create user, then its key" is where IAM's eventual consistency bites: wait for it.
DEMO_WAIT_FOR_USER = 10


@dataclasses.dataclass
class Stage:
    """What a Showing works with: the endpoint, the user, the options, the step's answers."""

    connection: dict[str, str]
    user: str
    options: dict[str, Any]
    identity: str | None = None
    responses: list[Response] = dataclasses.field(default_factory=list)

    def client(self, service: str) -> Any:
        """A boto3 client of the local endpoint, as the workflow's other steps would use."""
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=self.connection["region"],
            endpoint_url=self.connection["endpoint_url"],
            aws_access_key_id=self.connection["access_key_id"],
            aws_secret_access_key=self.connection["secret_access_key"],
        )


def _nothing(stage: Stage) -> None:
    """No stage to set, nothing to do after."""


@dataclasses.dataclass(frozen=True)
class Showing:
    """How the demo shows one option at work, and the line that says what it shows."""

    says: Callable[[Stage], str]
    before: Callable[[Stage], None] = _nothing
    after: Callable[[Stage], None] = _nothing
    runs: int = 1  # times the step runs with the same request


def _two_keys_one_inactive(stage: Stage) -> None:
    iam = stage.client("iam")
    ids = [iam.create_access_key(UserName=stage.user)["AccessKey"]["AccessKeyId"] for _ in "ab"]
    iam.update_access_key(UserName=stage.user, AccessKeyId=ids[0], Status="Inactive")
    listed = iam.list_access_keys(UserName=stage.user)["AccessKeyMetadata"]
    _show(
        "Before step 2: the user already has two keys (IAM's limit), the older one Inactive",
        {"AccessKeyMetadata": [{k: key[k] for k in ("AccessKeyId", "Status")} for key in listed]},
    )


def _at_limit_says(stage: Stage) -> str:
    results = [answer.result or {} for answer in stage.responses]
    deleted = next((r["DeletedAccessKeyId"] for r in results if "DeletedAccessKeyId" in r), None)
    if deleted:
        return (
            f"--at-limit {stage.options['at_limit']}: the user had two keys, one Inactive; the "
            f"step deleted that one ({deleted}) to make room, and names it (DeletedAccessKeyId)"
        )
    return (
        f"--at-limit {stage.options['at_limit']}: the user had two keys; the step failed listing "
        "them, so that a person decides"
    )


def _idempotency_says(stage: Stage) -> str:
    first, second = stage.responses[0], stage.responses[-1]
    replaced = (second.result or {}).get("ReplacedAccessKeyId")
    made = ((first.result or {}).get("AccessKey") or {}).get("AccessKeyId")
    if replaced:
        return (
            f"--idempotency-key: the step ran twice with the same token, as an engine retries a "
            f"step whose answer was lost; the second attempt deleted the first's key ({made}, "
            f"its secret never received) and names it (ReplacedAccessKeyId): one key per token"
        )
    return (
        "--idempotency-key: the step ran twice with the same token; the second attempt found the "
        "first's key safe in the vault and created nothing (the same reference)"
    )


def _read_vault_back(stage: Stage) -> None:
    kind, _, name = str(stage.options["vault"]).partition(":")
    if kind == "secretsmanager":
        text = stage.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    else:
        answer = stage.client("ssm").get_parameter(Name=name, WithDecryption=True)
        text = answer["Parameter"]["Value"]
    held = json.loads(text)
    # The demo shows what the vault holds, not the secret itself: its length stands for it.
    shown = {
        field: f"<{len(value)} characters>" if "Secret" in field or "Password" in field else value
        for field, value in held.items()
    }
    _show(f"After step 2: {stage.options['vault']} read back", shown)


def _vault_says(stage: Stage) -> str:
    return (
        f"--vault {stage.options['vault']}: the step's result carries a reference and no secret; "
        "the vault, read back, holds the key id and its secret"
    )


def _open_sealed(stage: Stage) -> None:
    if stage.identity is None:
        return
    from plugin.delivery.unseal import open_text

    result = stage.responses[-1].result or {}
    opened = json.loads(open_text(json.dumps(result), stage.identity))
    secret = opened["AccessKey"]["SecretAccessKey"]
    print(
        f"After step 2: unseal --identity {stage.identity} opened SealedSecretAccessKey: a "
        f"{len(secret)}-character secret access key (not shown here)\n"
    )


def _seal_says(stage: Stage) -> str:
    if stage.identity is None:
        return (
            "--seal-secret-to: the result carries SealedSecretAccessKey, age text only the "
            "recipient's identity opens: iam-create-access-key unseal --identity FILE < result"
        )
    return (
        "--seal-secret-to: the result carries SealedSecretAccessKey, age text that the "
        f"identity in {stage.identity} opened (iam-create-access-key unseal)"
    )


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


def _expiry_role(stage: Stage) -> None:
    """The demo's expiry role (moto checks neither its trust nor its permissions)."""
    if stage.options.get("expiry_role_arn"):
        return
    role = stage.client("iam").create_role(
        RoleName=f"demo-key-expiry-{secrets.token_hex(3)}",
        AssumeRolePolicyDocument=json.dumps(_EXPIRY_TRUST),
    )["Role"]
    print(f"Expiry role for EventBridge Scheduler: {role['Arn']}\n")
    stage.options["expiry_role_arn"] = str(role["Arn"])


def _show_schedule(stage: Stage) -> None:
    """What AWS will run at the key's expiry, read back from the scheduler."""
    result = stage.responses[-1].result or {}
    if "Expires" not in result:
        return
    name = result["Expires"]["ScheduleArn"].rsplit("/", 1)[1]
    schedule = stage.client("scheduler").get_schedule(Name=name)
    schedule.pop("ResponseMetadata", None)
    _show("Step 3: the expiry schedule (EventBridge Scheduler GetSchedule)", schedule)


def _expiry_says(stage: Stage) -> str:
    result = stage.responses[-1].result or {}
    at = (result.get("Expires") or {}).get("At", "its expiry")
    return (
        f"--expires-after {stage.options['expires_after']}: EventBridge Scheduler holds a "
        f"one-time schedule that deletes the key at {at}, whether or not anything of ours runs"
    )


def _an_older_key(stage: Stage) -> None:
    """A rotation's stage: the user already has a key, which the step's OtherKeys reports."""
    key = stage.client("iam").create_access_key(UserName=stage.user)["AccessKey"]
    _show(
        "Before step 2: the user already has a key (the one a rotation replaces)",
        {"AccessKeyId": key["AccessKeyId"], "Status": key["Status"]},
    )


def _other_keys_says(stage: Stage) -> str:
    result = stage.responses[-1].result or {}
    others = result.get("OtherKeys") or []
    if not others:
        return "--report-other-keys: the result lists the user's other keys (OtherKeys): none"
    listed = "; ".join(
        f"{other['AccessKeyId']}, {other['Status']}, last used: "
        f"{(other.get('LastUsed') or {}).get('LastUsedDate', 'never')}"
        for other in others
    )
    return (
        f"--report-other-keys: the result lists the user's other keys, not the new one "
        f"(OtherKeys: {listed}): what the next step of a rotation deactivates or deletes"
    )


def _read_description_back(stage: Stage) -> None:
    """The description as the IAM console reads it: the user's tag named by the key id."""
    result = stage.responses[-1].result or {}
    key_id = (result.get("AccessKey") or {}).get("AccessKeyId")
    tags = stage.client("iam").list_user_tags(UserName=stage.user)["Tags"]
    shown = [tag for tag in tags if tag["Key"] == key_id]
    _show(
        f"After step 2: the user's tag {key_id} (IAM ListUserTags, as the console reads it)", shown
    )


def _description_says(stage: Stage) -> str:
    result = stage.responses[-1].result or {}
    key_id = (result.get("AccessKey") or {}).get("AccessKeyId", "the new key")
    value = result.get("Description", stage.options["description"])
    return (
        f'--description: the IAM console shows "{value}" as the description of key {key_id}: '
        "the user's tag named by the key id (read back above)"
    )


def _says(text: str) -> Callable[[Stage], str]:
    return lambda stage: text.format(**stage.options)


SHOWINGS: dict[str, Showing] = {
    "at_limit": Showing(_at_limit_says, before=_two_keys_one_inactive),
    "idempotency_key": Showing(_idempotency_says, runs=2),
    "vault": Showing(_vault_says, after=_read_vault_back),
    "seal_secret_to": Showing(_seal_says, after=_open_sealed),
    "expires_after": Showing(_expiry_says, before=_expiry_role, after=_show_schedule),
    "report_other_keys": Showing(_other_keys_says, before=_an_older_key),
    "description": Showing(_description_says, after=_read_description_back),
    "status": Showing(_says("--status {status}: the new key is {status} (Status)")),
    "check_only": Showing(
        _says("--check-only: the step reports what it would do (Check) and creates nothing")
    ),
    "wait_until_usable": Showing(
        _says("--wait-until-usable: STS accepted the new key before the step answered (Usable)")
    ),
    "ses_smtp_region": Showing(
        _says(
            "--ses-smtp-region {ses_smtp_region}: the result carries the key's SES SMTP "
            "password for that region (SesSmtpPasswordV4)"
        )
    ),
    "wait_for_user": Showing(
        _says(
            "--wait-for-user {wait_for_user}: step 2 would wait up to that long for a user IAM "
            "does not show yet (moto shows it at once)"
        )
    ),
    "disable_xml_to_json": Showing(
        _says("--disable-xml-to-json: the result is IAM's own XML, untouched")
    ),
}


def run_demo(options: dict[str, Any] | None = None, identity: str | None = None) -> int:
    """Run the two-step workflow; return the action's error code.

    `options` are more parameters for the action's step (sealing, a vault, a status, ...):
    moto's server answers Secrets Manager, SSM and STS too. `identity`: an age identity file
    to open a sealed secret with.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ActionError(
            "the demo needs moto's server: pip install 'iam-create-access-key[demo]'",
            Category.REJECTED,
        ) from None
    options = dict(options or {})
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the terminal
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        connection = {**DEMO_CONNECTION, "endpoint_url": f"http://{host}:{port}"}
        print(f"Local IAM endpoint (moto) on {connection['endpoint_url']}\n")
        user = _create_user_step(connection)
        _show("Step 1: IAM Create User", user)
        stage = Stage(connection, user["User"]["UserName"], options, identity)
        showings = [SHOWINGS[name] for name in options if name in SHOWINGS]
        for showing in showings:
            showing.before(stage)
        return _action_step(stage, showings)
    finally:
        server.stop()


def _action_step(stage: Stage, showings: list[Showing]) -> int:
    """Step 2, as many times as an option needs, then what each option shows."""
    from plugin.engine import respond

    parameters = {
        "regions": "us-east-1",
        "user_name": stage.user,
        "wait_for_user": DEMO_WAIT_FOR_USER,
        **stage.options,
    }
    print(
        f"Step 2 waits up to {parameters['wait_for_user']} s for IAM to show the new user "
        "(wait_for_user): real IAM may answer NoSuchEntity for a few seconds after Create "
        "User. moto shows it at once.\n"
    )
    request = {"parameters": parameters, "connection": stage.connection}
    _show("Step 2: IAM Create Access Key (engine request)", _without_secrets(request))
    runs = max([showing.runs for showing in showings] or [1])
    for attempt in range(1, runs + 1):
        response = respond(request)
        stage.responses.append(response)
        again = f", attempt {attempt} of {runs} with the same request" if runs > 1 else ""
        _show(f"Step 2: IAM Create Access Key (engine response{again})", response.as_mapping())
    if response.ok:
        for showing in showings:
            showing.after(stage)
    for showing in showings:
        print(f"Shown: {showing.says(stage)}")
    if not showings:
        print("Shown: a new user's key, handed from one workflow step to the next")
    return response.error_code


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
