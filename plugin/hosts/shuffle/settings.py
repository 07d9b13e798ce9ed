"""What the operator of the Shuffle app decides, read from the app container's environment.

Shuffle's worker starts an app with a fixed environment (Shuffle/shuffle functions/onprem/worker/
worker.go) and passes none of its own variables on: an operator reaches the app only through the
image's ENV (the app's Dockerfile) or, on Kubernetes, the Helm chart's per-app `extraEnvVars`.
Nothing set is the safe default: the container's own AWS identity is lent to nobody, any vault
name may be written (the connection's own credentials decide), no expiry role.

A Shuffle user chooses only what the app's form shows (api.yaml: authentication and action
arguments); everything here is the operator's, so refusals name the variable, never a flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from plugin.contract import resources, validation
from plugin.contract.errors import ActionError, Category
from plugin.contract.request import CheckedRequest
from plugin.delivery import vault
from plugin.hosts.operator.settings import BY_NAME, LEND_ALL, LEND_NONE, SettingError

# The variables an operator of serve sets for the same decisions, named and read by serve's one
# table (operator.settings: Setting.from_text, as `resolve` reads a variable), so the same value
# means the same thing on both doors. This door reads fewer of them and offers fewer choices (no
# role to assume: the form has no role fields).
LEND_IDENTITY = BY_NAME["lend_identity"].variable
VAULT_PREFIX = BY_NAME["vault_prefix"].variable
# Action parameters the operator sets on this door, and the form never shows: (the variable,
# the parameter whose use needs it). The role EventBridge Scheduler assumes to delete an
# expiring key is the operator's to name (a caller's parameter on other doors), and a call
# passes it only when it asks for an expiry (the action refuses the role without one).
OPERATOR_PARAMETERS = {"expiry_role_arn": (BY_NAME["expiry_role_arn"].variable, "expires_after")}

# The authentication a Shuffle user fills (api.yaml), as Shuffle's own AWS apps ask for it
# (Shuffle/python-apps aws-iam: access key, secret key, region), plus a session token for
# temporary credentials. The role fields and endpoint_url of the connection schema are not
# offered: a role assumed with the worker's identity is lending it, and an endpoint chosen by a
# workflow author would receive the new secret; an operator points the app at another endpoint
# with the standard AWS_ENDPOINT_URL(_IAM) variables, as for any AWS SDK.
AUTHENTICATION = ("access_key_id", "secret_access_key", "session_token", "region")

_LEND_CHOICES = (LEND_NONE, LEND_ALL)
_HOW = "on the app's image (ENV) or in the Helm chart's extraEnvVars"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The operator's answer to "whose identity, which vault names, which operator values"."""

    lend_identity: bool = False
    vault_prefixes: tuple[str, ...] = ()
    operator_values: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """The settings the environment holds; ValueError naming a variable it cannot read."""
        try:
            lend = _variable(environ, "lend_identity") or LEND_NONE
        except SettingError:  # serve's choices, assume-role among them: this door's words
            lend = None
        if lend not in _LEND_CHOICES:
            raise ValueError(
                f"The app's setting {LEND_IDENTITY} is {environ[LEND_IDENTITY].strip()!r}; it "
                f"must be none or all ({_HOW}); nothing was sent to AWS"
            )
        try:
            prefixes = tuple(_variable(environ, "vault_prefix") or ())
        except SettingError as error:  # the message names the variable and the value
            said = f"The app's setting {error} ({_HOW}); nothing was sent to AWS"
            raise ValueError(said) from None
        offered = {entry["name"] for entry in resources.manifest()["parameters"]}
        values = {}
        for name, (variable, _) in OPERATOR_PARAMETERS.items():
            value = _variable(environ, name)
            if name not in offered or not value:
                continue
            if validation.problems("input", {name: value}, "parameters"):
                raise ValueError(
                    f"The app's setting {variable} is not a valid {name} ({_HOW}); nothing was "
                    "sent to AWS"
                )
            values[name] = value
        return cls(lend == LEND_ALL, prefixes, values)

    def parameters(self, given: Mapping[str, object]) -> dict[str, str]:
        """The operator's values this call needs (its arguments `given` ask for them)."""
        return {
            name: value
            for name, value in self.operator_values.items()
            if str(given.get(OPERATOR_PARAMETERS[name][1]) or "").strip()
        }

    def admit(self, checked: CheckedRequest) -> None:
        """Refuse (code 2 or 3, nothing sent) what this app's settings do not allow."""
        for name, (variable, needed_with) in OPERATOR_PARAMETERS.items():
            # getattr: the request has these fields once the manifest has the parameters
            if getattr(checked.parameters, needed_with, None) and not getattr(
                checked.parameters, name, None
            ):
                raise ActionError(
                    f"Invalid input: {_display_name(needed_with)} needs the app's setting "
                    f"{variable}, which is not set: its administrator sets it {_HOW} "
                    "(nothing was sent)",
                    Category.INVALID_INPUT,
                )
        problems = [p for p in (self._identity(checked), self._vault(checked)) if p]
        if problems:
            raise ActionError("; ".join(problems) + " (nothing was sent)", Category.REJECTED)

    def _identity(self, checked: CheckedRequest) -> str | None:
        if checked.connection.access_key_id is not None or self.lend_identity:
            return None
        return (
            "The app's authentication has no Access Key ID, and the app does not lend its "
            "own AWS identity: fill Access Key ID and Secret Access Key in the "
            "authentication (or its administrator sets "
            f"{LEND_IDENTITY}=all {_HOW})"
        )

    def _vault(self, checked: CheckedRequest) -> str | None:
        given = checked.parameters.vault
        if given is None or not vault.outside(given, self.vault_prefixes):
            return None
        return (
            f"vault: {given} is outside the names this app writes "
            f"({', '.join(self.vault_prefixes)}: {VAULT_PREFIX})"
        )


def _variable(environ: Mapping[str, str], name: str) -> Any:
    """A row's variable read as serve reads it (None when unset or blank); SettingError,
    naming the variable, for text the row's grammar refuses."""
    return BY_NAME[name].from_text(environ.get(BY_NAME[name].variable, ""))


def _display_name(name: str) -> str:
    """A parameter's name as Shuffle's editor shows it (the manifest's display name)."""
    for entry in resources.manifest()["parameters"]:
        if entry["name"] == name:
            return str(entry["display_name"])
    return name
