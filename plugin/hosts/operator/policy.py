"""What a caller of `serve` may ask for: whose AWS identity signs, which endpoints and vault
names it reaches. The operator decides with serve's flags; a caller never does.

A caller that brings credentials of its own (an access key in the connection) acts as itself.
A caller without one would act with the server's own identity (its environment, profile or
instance role): that is lent only on purpose (`--lend-identity`), and with `assume-role` only to
assume roles the operator allows, with no external ID of the caller's choosing (the external ID
is the defence against a confused deputy: the deputy, not the caller, must set it). The
operator's own external ID (`--role-external-id`, per role pattern if need be) is set on the
request the server admits, and only when its own identity assumes the role: a caller that
brings a key of its own never gets it.

Every check reads the checked request (request.CheckedRequest), before anything is sent.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from urllib.parse import urlsplit

from plugin.aws.clients import is_loopback
from plugin.contract import validation
from plugin.contract.errors import ActionError, Category
from plugin.contract.request import CheckedRequest
from plugin.delivery import vault

from .settings import LEND_ALL, LEND_ASSUME_ROLE, LEND_NONE, ServeSettings

_DEFAULT_PORTS = {"http": 80, "https": 443}
# sts:AssumeRole's ExternalId: 2 to 1224 of these characters (the STS API reference).
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
ANY_PORT = "*"


@dataclasses.dataclass(frozen=True)
class Origin:
    """scheme://host:port, the port None for any port of the host."""

    scheme: str
    host: str
    port: int | None

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{ANY_PORT if self.port is None else self.port}"


def allowed_endpoint(text: str) -> Origin:
    """An --allow-endpoint entry: a URL, or scheme://host:* for any port of that host.

    ValueError (said in words for the operator) if it is not one, or if it is plain http to
    another machine (the answers carry secrets, which never cross a network in clear).
    """
    any_port = text.endswith(":" + ANY_PORT)
    origin = _origin(text[: -len(ANY_PORT)] + "0" if any_port else text)
    if origin is None:
        raise ValueError(f"--allow-endpoint {text}: not an http(s) URL or scheme://host:*")
    if origin.scheme == "http" and not is_loopback(origin.host):
        raise ValueError(
            f"--allow-endpoint {text}: plain http is allowed to loopback only (the answers carry "
            "secrets)"
        )
    return dataclasses.replace(origin, port=None) if any_port else origin


def external_id_entry(text: str) -> tuple[str, str]:
    """A --role-external-id entry: "ID" (every allowed role) or "PATTERN|ID"; ValueError in
    words for the operator (never echoing the ID) if it is neither. `|` because neither a role
    ARN nor an external ID can hold it, and a list item (flag or variable) is one word."""
    parts = text.split("|")
    pattern, external_id = ["*", *parts] if len(parts) == 1 else [*parts, "", ""][:2]
    if len(parts) not in (1, 2) or not pattern or not _EXTERNAL_ID.fullmatch(external_id):
        raise ValueError(
            "--role-external-id: give ID or 'PATTERN|ID', the ID 2 to 1224 letters, digits or "
            "_+=,.@:/- (sts:AssumeRole's rule)"
        )
    return pattern, external_id


def _origin(url: str) -> Origin | None:
    """The origin a URL names, or None if it names none (or hides a user name in it)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


def _expiry_role(text: str | None) -> str | None:
    """--expiry-role-arn, checked by the input schema's own rule for expiry_role_arn."""
    if not text:
        return None
    if validation.problems("input", {"expiry_role_arn": text}, "parameters"):
        raise ValueError(
            f"--expiry-role-arn {text}: not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        )
    return text


@dataclasses.dataclass(frozen=True)
class Policy:
    """The operator's answer to "whose identity, and what may a caller reach"."""

    lend_identity: str = LEND_NONE
    allow_role_arns: tuple[str, ...] = ()
    role_external_ids: tuple[tuple[str, str], ...] = ()  # (role pattern, external ID)
    allow_endpoints: tuple[Origin, ...] = ()
    vault_prefixes: tuple[str, ...] = ()
    expiry_role_arn: str | None = None  # for a call with Expires After and no role of its own

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> Policy:
        """The policy serve's settings (flags or variables: operator.settings) describe; ValueError
        naming the flag for one that is not a policy."""
        lend, roles = settings.lend_identity, tuple(settings.allow_role_arn)
        if roles and lend != LEND_ASSUME_ROLE:
            raise ValueError("--allow-role-arn goes with --lend-identity assume-role")
        if lend == LEND_ASSUME_ROLE and not roles:
            raise ValueError(
                "--lend-identity assume-role needs --allow-role-arn: the roles it may assume"
            )
        external_ids = tuple(external_id_entry(entry) for entry in settings.role_external_id)
        if external_ids and lend != LEND_ASSUME_ROLE:
            raise ValueError("--role-external-id goes with --lend-identity assume-role")
        return cls(
            lend_identity=lend,
            allow_role_arns=roles,
            role_external_ids=external_ids,
            allow_endpoints=tuple(allowed_endpoint(url) for url in settings.allow_endpoint),
            vault_prefixes=tuple(settings.vault_prefix),
            expiry_role_arn=_expiry_role(settings.expiry_role_arn),
        )

    def admit(self, checked: CheckedRequest) -> CheckedRequest:
        """Refuse (ActionError, code 3; nothing sent) what this server does not allow; return
        the request as this server runs it (with the operator's expiry role, if it needs one,
        and the operator's external ID where its own identity assumes a role)."""
        problems = [
            problem
            for problem in (
                self._endpoint_problem(checked),
                self._identity_problem(checked),
                self._vault_problem(checked),
            )
            if problem
        ]
        if problems:
            raise ActionError(
                "Refused by this server: " + "; ".join(problems) + " (nothing was sent)",
                Category.REJECTED,
            )
        return self._with_external_id(self._with_expiry_role(checked))

    def _with_expiry_role(self, checked: CheckedRequest) -> CheckedRequest:
        """The checked request, with the operator's expiry role for a call that needs one and
        has none."""
        parameters = checked.parameters
        if parameters.expires_after and not parameters.expiry_role_arn and self.expiry_role_arn:
            parameters = dataclasses.replace(parameters, expiry_role_arn=self.expiry_role_arn)
            return dataclasses.replace(checked, parameters=parameters)
        return checked

    def _with_external_id(self, checked: CheckedRequest) -> CheckedRequest:
        """The checked request, with the operator's external ID for a role its own identity
        assumes."""
        connection = checked.connection
        if (
            self.lend_identity != LEND_ASSUME_ROLE
            or connection.access_key_id is not None  # the caller's own key: never the operator's ID
            or connection.role_arn is None
        ):
            return checked
        for pattern, external_id in self.role_external_ids:
            if fnmatch.fnmatchcase(connection.role_arn, pattern):
                lent = dataclasses.replace(connection, external_id=external_id)
                return dataclasses.replace(checked, connection=lent)
        return checked

    def _endpoint_problem(self, checked: CheckedRequest) -> str | None:
        url = checked.connection.endpoint_url
        if url is None:
            return None
        origin = _origin(url)
        if origin is not None and any(
            (allowed.scheme, allowed.host) == (origin.scheme, origin.host)
            and allowed.port in (None, origin.port)
            for allowed in self.allow_endpoints
        ):
            return None
        shown = str(origin) if origin is not None else "an endpoint that is not an http(s) URL"
        return (
            f"connection.endpoint_url: {shown} is not an endpoint this server allows "
            "(the operator names them with --allow-endpoint)"
        )

    def _identity_problem(self, checked: CheckedRequest) -> str | None:
        connection = checked.connection
        if connection.access_key_id is not None:
            return None  # the caller's own credentials: it acts as itself
        if self.lend_identity == LEND_ALL:
            return None
        if self.lend_identity == LEND_NONE:
            return (
                "connection: no access key, so the call would act with this server's own AWS "
                "identity, which it lends to nobody (give the connection access_key_id and "
                "secret_access_key, or the operator starts serve with --lend-identity)"
            )
        if connection.role_arn is None:
            return (
                "connection: no access key and no role_arn; this server lends its own AWS "
                "identity only to assume a role it allows (--lend-identity assume-role)"
            )
        if not any(fnmatch.fnmatchcase(connection.role_arn, p) for p in self.allow_role_arns):
            return (
                f"connection.role_arn: {connection.role_arn} is not a role this server assumes "
                "with its own identity (the operator names them with --allow-role-arn)"
            )
        if connection.external_id is not None:
            return (
                "connection.external_id: a caller cannot choose the external ID this server "
                "assumes a role with (it is the defence against a confused deputy)"
            )
        return None

    def _vault_problem(self, checked: CheckedRequest) -> str | None:
        given = checked.parameters.vault
        if given is None or not vault.outside(given, self.vault_prefixes):
            return None
        return (
            f"parameters.vault: {given} is outside the names this server writes "
            f"(--vault-prefix {', '.join(self.vault_prefixes)})"
        )

    def lends(self) -> bool:
        return self.lend_identity != LEND_NONE
