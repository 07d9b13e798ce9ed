"""Which AWS service and endpoint a failed call was for, read from the client's own model.

botocore's connection errors carry the URL they could not reach but not the service, and the
action talks to several (IAM, STS, Secrets Manager, SSM, EventBridge Scheduler). Every session
the action signs with gets two handlers: `before-call` notes the service's name, taken from the
service model of the client making the call, in that call's context; `after-call-error` writes
it on the exception. So an error names the service that failed, and a client for a service
added later is named without new code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel
    from botocore.session import Session

_CONTEXT_KEY = "iam-create-access-key.service"
_ATTRIBUTE = "iam_create_access_key_service"


def name_of(model: ServiceModel) -> str:
    """The name people know a service by: IAM, STS, SSM, Secrets Manager, EventBridge
    Scheduler (the model's abbreviation, else its full name, less "AWS "/"Amazon ")."""
    metadata = model.metadata
    name = str(
        metadata.get("serviceAbbreviation") or metadata.get("serviceFullName") or model.service_id
    )
    for prefix in ("AWS ", "Amazon "):
        name = name.removeprefix(prefix)
    return name


def _note(**event: Any) -> None:
    """before-call: the model of the client's service, into the call's context."""
    model: OperationModel = event["model"]
    event["context"][_CONTEXT_KEY] = name_of(model.service_model)


def _tag(**event: Any) -> None:
    """after-call-error: the service's name, onto what the call raised."""
    context: dict[str, Any] = event["context"]
    if _CONTEXT_KEY in context:
        setattr(event["exception"], _ATTRIBUTE, context[_CONTEXT_KEY])


def name_services(session: Session) -> None:
    """Make the failures of every client later made from `session` name their service."""
    session.register("before-call", _note, unique_id=_CONTEXT_KEY + ".note")
    session.register("after-call-error", _tag, unique_id=_CONTEXT_KEY + ".tag")


def service_of(error: BaseException) -> str | None:
    """The service a failed call was for, when a named session's client made it."""
    name = getattr(error, _ATTRIBUTE, None)
    return name if isinstance(name, str) else None


def endpoint_of(error: BaseException) -> str | None:
    """The endpoint URL a botocore error names (never a user name or password in it)."""
    url = getattr(error, "kwargs", {}).get("endpoint_url")
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url


def where(error: BaseException) -> str:
    """ "the STS endpoint https://sts.amazonaws.com/", or as much of it as is known."""
    service, endpoint = service_of(error), endpoint_of(error)
    named = f"the {service} endpoint" if service else "the endpoint"
    return f"{named} {endpoint}" if endpoint else named
