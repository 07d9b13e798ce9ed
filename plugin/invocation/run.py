"""One invocation of IAM Create Access Key, from a checked request to a checked result."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from plugin.aws import client_errors, clients, convert, sessions
from plugin.contract import lifetime, regions, resources, validation
from plugin.contract.errors import WHOLE, ActionError, Category, attached
from plugin.contract.request import CheckedRequest, Connection, Parameters
from plugin.delivery import seal, smtp, vault
from plugin.runtime import key_witness, redaction
from plugin.runtime.deadline import Deadline

from . import (
    check_only,
    description,
    expiry,
    idempotency,
    limit,
    other_keys,
    reconcile,
    usable,
    wait_for_user,
)
from .create import Created, capture_raw_bodies, create_access_key, time_needed

log = logging.getLogger(__name__)
# What the invocation's steps need of an IAM client, registered once when it is made: IAM's own
# bytes for CreateAccessKey (create.py) and ListAccessKeys (limit.py).
_IAM_HOOKS = (capture_raw_bodies, limit.keep_listing_bodies)


@dataclasses.dataclass(frozen=True)
class _Delivery:
    """What the steps after the create need: where the key lives and how to reach AWS."""

    parameters: Parameters
    connection: Connection
    session: Any
    client: Any
    plan: regions.RegionPlan
    vault_region: str
    vault_target: vault.Target | None
    deadline: Deadline
    guard: Callable[[str], None]
    expiry_place: expiry.Place | None = None
    scheduler: Any = None
    # What to take back if the key is deleted after all: its schedule, its description tag.
    undo: list[Callable[[], None]] = dataclasses.field(default_factory=list)


def run(checked: CheckedRequest) -> dict[str, Any] | str:
    """Create exactly one access key; return {"AccessKey": ...} or IAM's raw XML document."""
    parameters, connection = checked.parameters, checked.connection
    _require_expiry_role(parameters)
    _require_ses_region_of_the_partition(parameters, connection)
    deadline = Deadline.from_timeout(checked.timeout)
    if parameters.check_only:
        context = client_errors.context(parameters.user_name, client_errors.CHECK_ONLY)
        doing = "checking, creating nothing (Check Only),"
    else:
        context, doing = client_errors.context(parameters.user_name), "creating a key"
    log.info("input checked; %s for %s", doing, client_errors.subject(parameters.user_name))
    with (
        redaction.redactor().guarding(*connection.secrets()) as guard,
        idempotency.ended_if_it_fails() as end_if_it_fails,
        attached(context),  # what fails after the create is about the invocation too
    ):
        # Signing in, up to the create: anything raised leaves as an ActionError about it.
        with client_errors.about(context):
            session = sessions.signed_in(connection, guard)
            home_region, plan, client = _iam_for(session, checked, deadline)
            log.info("partition %s, signing region %s", plan.partition, plan.signing_region)
            expiry_place = scheduler = None
            if parameters.expires_after and parameters.expiry_role_arn:
                expiry_place = expiry.place_for(
                    home_region, parameters.regions, plan, parameters.expiry_role_arn
                )
                scheduler = expiry.scheduler_client(
                    session, connection, expiry_place.region, deadline
                )
            if parameters.check_only:
                return _checked(
                    check_only.report(
                        session, client, connection, parameters, deadline, expiry_place
                    ),
                )
            vault_region = home_region or plan.signing_region
            earlier = replaced = None
            if parameters.idempotency_key:
                earlier = _earlier_attempts(client, parameters, deadline)
                held = _held_in_vault(earlier, session, connection, vault_region, parameters, guard)
                if held is not None:
                    return _held_with_its_life(held, client, scheduler, expiry_place, parameters)
                earlier = idempotency.take(client, parameters.user_name or "", earlier, deadline)
                end_if_it_fails(client, parameters.user_name or "", earlier)
                schedules = _Schedules(
                    scheduler,
                    lambda: expiry.scheduler_client(
                        session,
                        connection,
                        expiry.region_for(home_region, parameters.regions, plan),
                        deadline,
                        tries=1,  # only in case an earlier attempt made one: no retries
                    ),
                )
                replaced = idempotency.clear_the_way(
                    client,
                    parameters.user_name or "",
                    earlier,
                    lambda key_id: _forget_life(client, schedules, parameters, key_id),
                )
            place = None
            if parameters.vault:  # before the key: a target that is not ours is refused now
                with _before_the_key("Hand Secret To Vault", parameters.user_name):
                    place = vault.ensure_ours(session, connection, vault_region, parameters.vault)
            others = None
            if parameters.report_other_keys:  # before the key: a refusal leaves nothing behind
                with _before_the_key("Report The User's Other Keys", parameters.user_name):
                    others = other_keys.report(client, parameters.user_name)
            created, deleted = _create_making_room(client, parameters, deadline)
        guard(str(created.document["AccessKey"]["SecretAccessKey"]))
        key_witness.report(key_witness.CREATED, created.document["AccessKey"]["AccessKeyId"])
        log.info("created access key %s", created.document["AccessKey"]["AccessKeyId"])
        key = dict(created.document["AccessKey"])
        if earlier is not None:
            with _deleted_if_it_fails(client, key, "recording the key for its idempotency key"):
                idempotency.record(client, parameters.user_name or "", earlier, key["AccessKeyId"])
        delivery = _Delivery(
            parameters,
            connection,
            session,
            client,
            plan,
            vault_region,
            place,
            deadline,
            guard,
            expiry_place,
            scheduler,
        )
        document = _finish(key, delivery)
        if earlier is not None:  # a lease lost meanwhile: the new holder may delete this key
            with _deleted_if_it_fails(client, key, "confirming the idempotency key", delivery.undo):
                idempotency.confirm(client, parameters.user_name or "", earlier, key["AccessKeyId"])
    if parameters.disable_xml_to_json:
        return created.body.decode("utf-8")
    result = _in_schema_order(document)
    if deleted:
        result["DeletedAccessKeyId"] = deleted
    if replaced:
        result["ReplacedAccessKeyId"] = replaced
    if others is not None:
        gone = {deleted, replaced, key["AccessKeyId"]}
        result["OtherKeys"] = [other for other in others if other["AccessKeyId"] not in gone]
    return result


@contextlib.contextmanager
def _before_the_key(step: str, user_name: str | None) -> Iterator[None]:
    """Within the block, AWS unreachable or refusing is reported as `step`'s failure, before
    any key was created (CreateAccessKey was not called). The step's own refusals
    (ActionError) are about the invocation, as any other."""
    try:
        yield
    except ActionError:
        raise
    except Exception as error:
        step_failed = client_errors.context(user_name, step, "before any key was created")
        raise client_errors.translate(error, step_failed) from None


def _require_expiry_role(parameters: Parameters) -> None:
    """Expires After needs a role: the request's own, or one an operator's serve or Shuffle app
    fills in for its callers. Without one, an input error before anything is sent."""
    if parameters.expires_after and not parameters.expiry_role_arn:
        raise ActionError(
            "Invalid input: parameters.expiry_role_arn: needed with parameters.expires_after "
            "(the role EventBridge Scheduler deletes the key with): give Expiry Role ARN "
            "(run: --expiry-role-arn ARN; an engine request: parameters.expiry_role_arn). Only "
            "an operator sets one for callers that give none: serve's --expiry-role-arn, or "
            "IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN on serve or the Shuffle app; run and "
            "execute read no such setting; nothing was created",
            Category.INVALID_INPUT,
        )


def _require_ses_region_of_the_partition(parameters: Parameters, connection: Connection) -> None:
    """The SES SMTP region must be of the partition the request acts in. The input's checks
    know it only when regions or the connection name a region; with `*` and neither, it is
    the session's default region's (environment, profile), read here before anything is sent."""
    if not parameters.ses_smtp_region:
        return
    home = connection.region
    if home is None:
        try:
            home = sessions.default_region(sessions.session_for(connection))
        except Exception:  # a profile that cannot be read: signing in says so, in its words
            return
    partition = regions.plan(parameters.regions, home).partition
    problems = regions.region_problems(
        parameters.ses_smtp_region, "parameters.ses_smtp_region", partition
    )
    if problems:
        raise ActionError("Invalid input: " + "; ".join(problems), Category.INVALID_INPUT)


@dataclasses.dataclass
class _Schedules:
    """The scheduler client of this attempt's Expires After, else one made when first needed
    (in the region the schedule of an earlier attempt would be in: expiry.region_for)."""

    client: Any
    make: Callable[[], Any]

    def get(self) -> Any:
        if self.client is None:
            self.client = self.make()
        return self.client


def _forget_life(client: Any, schedules: _Schedules, parameters: Parameters, key_id: str) -> None:
    """A replaced key takes its description tag and its expiry schedule with it, whatever
    this attempt's own options: the attempt that made it may have given them. Best effort:
    what is left only names a key that is gone (a schedule fails harmlessly at its time)."""
    user = parameters.user_name or ""
    try:
        description.unlabel(client, user, key_id)  # an absent tag is no error
    except Exception as error:
        log.warning(
            "could not remove the description tag %s of the replaced key (%s)",
            key_id,
            client_errors.aws_reason(error),
        )
    try:
        expiry.forget(schedules.get(), key_id)  # an absent schedule is no error
    except Exception as error:
        # Without Expires After of its own, this attempt may lack scheduler:DeleteSchedule;
        # there may be no schedule at all: it is said, not warned.
        say = log.warning if parameters.expires_after else log.info
        say(
            "could not delete the expiry schedule %s an earlier attempt may have made for the "
            "replaced key (%s); if it exists it fails harmlessly at its time",
            expiry.schedule_name(key_id),
            client_errors.aws_reason(error),
        )


def _held_with_its_life(
    held: dict[str, Any],
    client: Any,
    scheduler: Any,
    place: expiry.Place | None,
    parameters: Parameters,
) -> dict[str, Any]:
    """An earlier attempt's key, safe in the vault, with what that attempt gave it: its schedule
    (found by its name, or made now if that attempt stopped before it), its description, the
    other keys."""
    key = held["AccessKey"]
    user = parameters.user_name or ""
    at = None
    if scheduler is not None and place is not None and parameters.expires_after:
        at = lifetime.expiry(_created_at(key), parameters.expires_after)
        held["Expires"] = expiry.schedule(
            scheduler, key["AccessKeyId"], user, at, place, parameters.expires_after
        )
        at = dt.datetime.strptime(held["Expires"]["At"], lifetime.IAM_TIME)
    if parameters.description:
        value = lifetime.tag_value(parameters.description, at)
        description.label(client, user, key["AccessKeyId"], value)
        held["Description"] = value
    if parameters.report_other_keys:
        held["OtherKeys"] = [
            other
            for other in other_keys.report(client, user)
            if other["AccessKeyId"] != key["AccessKeyId"]
        ]
    return held


def _created_at(key: dict[str, Any]) -> dt.datetime:
    """When IAM says it made the key (CreateDate), else now: the expiry counts from it."""
    created = lifetime.iam_time(str(key.get("CreateDate", "")))
    return created or dt.datetime.now(dt.timezone.utc)


def _earlier_attempts(
    client: Any, parameters: Parameters, deadline: Deadline
) -> idempotency.Earlier:
    """What earlier attempts with the request's idempotency key left on the user."""
    return idempotency.look(
        client,
        parameters.user_name or "",
        parameters.idempotency_key or "",
        lambda call: wait_for_user.retrying_while_missing(
            call, parameters.user_wait_seconds(), deadline
        ),
    )


def _held_in_vault(
    earlier: idempotency.Earlier,
    session: Any,
    connection: Connection,
    region: str,
    parameters: Parameters,
    guard: Callable[[str], None],
) -> dict[str, Any] | None:
    """With a vault: the earlier attempt's answer, if its key and secret are safe there."""
    if earlier.recorded is None or not parameters.vault:
        return None
    found = vault.holding(
        session, connection, region, parameters.vault, earlier.recorded.access_key_id
    )
    if found is None:
        return None
    where, secrets = found
    for secret in secrets:
        guard(secret)
    key = earlier.recorded
    access_key = {
        "AccessKeyId": key.access_key_id,
        "CreateDate": key.create_date,
        "Status": key.status,
        "UserName": parameters.user_name,
    }
    log.info("key %s is already in %s: nothing created", key.access_key_id, parameters.vault)
    return {"AccessKey": access_key, "Vault": where}


def withdraw(checked: CheckedRequest, result: dict[str, Any] | str) -> str | None:
    """Delete the key a result carries when that result can no longer reach anyone (the caller
    hung up): nobody would ever hold its secret. Returns the key's id, or None when there is
    nothing to delete (a check, or a vault that holds the secret)."""
    if isinstance(result, str):
        key_id = convert.key_id_of(result)
    elif "Vault" in result or "AccessKey" not in result:
        return None
    else:
        key_id = result["AccessKey"]["AccessKeyId"]
    if key_id is None:
        return None
    session = sessions.session_for(checked.connection)
    _, _, client = _iam_for(session, checked, Deadline.unenforced())
    _delete_undelivered(client, key_id, checked.parameters.user_name)
    if isinstance(result, dict):
        _take_back(_life_of(session, checked.connection, client, result, key_id))
    return key_id


def _life_of(
    session: Any, connection: Connection, client: Any, result: dict[str, Any], key_id: str
) -> list[Callable[[], None]]:
    """What a result says was made for its key: its schedule, its description tag."""
    undo: list[Callable[[], None]] = []
    user = result["AccessKey"].get("UserName") or ""
    if "Expires" in result:
        region = result["Expires"]["ScheduleArn"].split(":")[3]
        scheduler = expiry.scheduler_client(session, connection, region, Deadline.unenforced())
        undo.append(lambda: expiry.forget(scheduler, key_id))
    if "Description" in result:
        undo.append(lambda: description.unlabel(client, user, key_id))
    return undo


def keys_created_since(checked: CheckedRequest, since: float, seconds: float) -> list[str]:
    """The ids of the keys IAM shows on the request's user created since `since` (monotonic
    clock, by IAM's own), looked up within `seconds`: what an unfinished call may have made."""
    deadline = Deadline(seconds)
    _, _, client = _iam_for(sessions.session_for(checked.connection), checked, deadline)
    orphans = reconcile.find_orphans(client, checked.parameters.user_name, since, deadline)
    return [orphan.access_key_id for orphan in orphans]


def _iam_for(
    session: Any, checked: CheckedRequest, deadline: Deadline
) -> tuple[str | None, regions.RegionPlan, Any]:
    """The connection's home region, the region plan and the IAM client it signs with."""
    connection = checked.connection
    home_region = connection.region or sessions.default_region(session)
    plan = regions.plan(checked.parameters.regions, home_region)
    client = clients.iam_client(
        session, plan.signing_region, connection.endpoint_url, deadline, _IAM_HOOKS
    )
    return home_region, plan, client


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    problems = validation.problems("output", result, "result")
    if problems:  # a bug of this plugin's: the check's shape is its own
        raise ActionError(f"internal error ({'; '.join(problems)})", Category.INTERNAL)
    return result


def _create_making_room(
    client: Any, parameters: Parameters, deadline: Deadline
) -> tuple[Created, str | None]:
    """Create the key, waiting for a user IAM does not show yet; at the two-key limit, apply
    the at_limit policy (which may delete the oldest Inactive key, whose id is returned) and
    create it then."""

    def create() -> Created:
        return wait_for_user.retrying_while_missing(
            lambda: create_access_key(client, parameters.user_name, deadline),
            parameters.user_wait_seconds(),
            deadline,
            needed=time_needed(deadline),
            creates=True,
        )

    try:
        return create(), None
    except ClientError as error:
        if not limit.is_limit(error):
            raise
        refusal = client_errors.aws_reason(error)  # the invocation's context is said before it
        deleted = limit.make_room(client, parameters.user_name, parameters.at_limit, refusal)
        return create(), deleted


def _finish(key: dict[str, Any], delivery: _Delivery) -> dict[str, Any]:
    """Apply the options that act on the new key: its status, the wait until it works, the
    SMTP password, then where its secrets go.

    If one of them fails, the key is deleted: nothing orphaned, nothing lost.
    """
    parameters, client = delivery.parameters, delivery.client
    user = reconcile.user_arguments(key.get("UserName"))
    extra = _give_it_a_life(key, delivery)
    if parameters.status != key["Status"]:
        with _deleted_if_it_fails(
            client, key, f"UpdateAccessKey to {parameters.status}", delivery.undo
        ):
            client.update_access_key(
                AccessKeyId=key["AccessKeyId"], Status=parameters.status, **user
            )
        key["Status"] = parameters.status  # IAM accepted it: the key's status now
    if parameters.wait_until_usable:
        with _deleted_if_it_fails(client, key, "waiting until the key works", delivery.undo):
            extra["Usable"] = usable.wait_until_usable(
                delivery.session,
                key["AccessKeyId"],
                key["SecretAccessKey"],
                delivery.plan.signing_region,
                delivery.connection.endpoint_url,
                delivery.deadline,
            )
    if parameters.ses_smtp_region:
        with _deleted_if_it_fails(client, key, "deriving the SES SMTP password", delivery.undo):
            key[SMTP] = smtp.ses_smtp_password_v4(
                key["SecretAccessKey"], parameters.ses_smtp_region
            )
            delivery.guard(key[SMTP])
    if parameters.seal_secret_to:
        with _deleted_if_it_fails(client, key, "the secret could not be sealed", delivery.undo):
            for clear, sealed in _SEALED_AS.items():
                if clear in key:
                    key[sealed] = seal.seal(key.pop(clear), parameters.seal_secret_to)
    elif delivery.vault_target is not None:
        with _deleted_if_it_fails(client, key, f"writing to {parameters.vault}", delivery.undo):
            extra["Vault"] = vault.hand_over(
                delivery.session,
                delivery.connection,
                delivery.vault_region,
                delivery.vault_target,
                key,
            )
        for clear in _SEALED_AS:
            key.pop(clear, None)
    return {"AccessKey": key, **extra}


def _give_it_a_life(key: dict[str, Any], delivery: _Delivery) -> dict[str, Any]:
    """Before the key is delivered: its expiry schedule, then its description tag (which says
    when it expires). If either fails, the key is deleted: never delivered without them."""
    parameters, client = delivery.parameters, delivery.client
    key_id, user = key["AccessKeyId"], key.get("UserName")
    extra: dict[str, Any] = {}
    at = None
    place, scheduler = delivery.expiry_place, delivery.scheduler
    if parameters.expires_after and place is not None:
        with _deleted_if_it_fails(
            client, key, f"creating its expiry schedule in {place.region}", delivery.undo
        ):
            at = lifetime.expiry(_created_at(key), parameters.expires_after)
            extra["Expires"] = expiry.schedule(
                scheduler, key_id, _user_of(user), at, place, parameters.expires_after
            )
        delivery.undo.append(lambda: expiry.forget(scheduler, key_id))
    if parameters.description:
        value = lifetime.tag_value(parameters.description, at)
        with _deleted_if_it_fails(client, key, "tagging its description", delivery.undo):
            description.label(client, _user_of(user), key_id, value)
        delivery.undo.append(lambda: description.unlabel(client, _user_of(user), key_id))
        extra["Description"] = value
    return extra


def _user_of(user: str | None) -> str:
    """A description and an expiry name the key's user: the root user's key has none."""
    if not user:
        raise ActionError(
            "the key is the account root user's, which has no user to tag or to name in a "
            "schedule (Description and Expires After are for IAM users' keys)",
            Category.REJECTED,
        )
    return user


SMTP = "SesSmtpPasswordV4"
# The secrets in AccessKey, and their names once sealed.
_SEALED_AS = {"SecretAccessKey": "SealedSecretAccessKey", SMTP: "SealedSesSmtpPasswordV4"}


@contextlib.contextmanager
def _deleted_if_it_fails(
    client: Any,
    key: dict[str, Any],
    step: str,
    undo: list[Callable[[], None]] | None = None,
) -> Iterator[None]:
    """One step of delivering the new key; if it fails, the key is deleted (and what `undo`
    holds taken back) and the error says so. AWS's refusals are REJECTED, unreachable AWS
    TRANSIENT, anything else a bug."""
    try:
        yield
    except Exception as error:
        _delete_undelivered(client, key["AccessKeyId"], key.get("UserName"))
        _take_back(undo or [])
        deleted = f"; key {key['AccessKeyId']} was deleted, so nothing is left behind"
        if isinstance(error, ActionError):
            inner, category = error, error.category
        elif isinstance(error, ClientError):
            inner, category = client_errors.translate(error, step), Category.REJECTED
        elif isinstance(error, BotoCoreError):
            inner, category = client_errors.translate(error, step), Category.TRANSIENT
        else:
            raise ActionError(
                f"{step} ({type(error).__name__})", Category.INTERNAL, advice=deleted
            ) from None
        # The step's error, as it reads (a step names itself: "UpdateAccessKey to Inactive:
        # ..."), is the reason of the invocation's error, with what became of the key after it;
        # AWS's code is kept (its request id, as before, is the step's, not the answer's).
        raise ActionError(
            inner.message, category, aws_code=inner.aws_code, advice=deleted
        ) from None


def _take_back(undo: list[Callable[[], None]]) -> None:
    """Remove what was made for a key now deleted. Best effort: a schedule left behind only
    fails harmlessly at its time (the key is gone), a tag only names a key that is not there."""
    for step in reversed(undo):
        try:
            step()
        except Exception as error:
            log.warning(
                "could not remove what was made for a deleted key (%s)", type(error).__name__
            )


def _delete_undelivered(client: Any, key_id: str, user: str | None) -> None:
    """A key whose secret will not be delivered must not outlive the invocation.

    A delete is safe to repeat, so one that timed out or could not connect is tried once more
    (IAM's NoSuchEntity then means the first one did it): custody over a tight deadline.
    """
    try:
        for attempt in (1, 2):
            try:
                client.delete_access_key(AccessKeyId=key_id, **reconcile.user_arguments(user))
                key_witness.report(key_witness.DELETED, key_id)
                return
            except BotoCoreError:
                if attempt == 2:
                    raise
            except ClientError as error:
                if attempt == 2 and client_errors.aws_code(error) == "NoSuchEntity":
                    key_witness.report(key_witness.DELETED, key_id)
                    return
                raise
    except Exception as error:
        key_witness.report(key_witness.LEFT, key_id)
        who = f" --user-name {user}" if user else ""
        raise ActionError(
            f"key {key_id} was created but cannot be delivered, and deleting it failed "
            f"({type(error).__name__}): delete it (aws iam delete-access-key --access-key-id "
            f"{key_id}{who})",
            Category.TRANSIENT,
            about=WHOLE,  # it names the key left behind, whatever the invocation was
        ) from None


def _in_schema_order(document: dict[str, Any]) -> dict[str, Any]:
    """The AccessKey fields in the documented order, then any field IAM adds later."""
    order = list(resources.schema("output")["properties"]["AccessKey"]["properties"])
    fields = document["AccessKey"]
    ranked = sorted(fields, key=lambda name: order.index(name) if name in order else len(order))
    return {**document, "AccessKey": {name: fields[name] for name in ranked}}
