"""`serve`'s settings, once: each flag's name, kind, default, help, and the environment
variable that sets it too (containers are configured so; a flag wins over its variable).

No grpc here: the command line shows these without importing it (the `run` path never pays
for it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

ENV_PREFIX = "IAM_CREATE_ACCESS_KEY_"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337
DEFAULT_GRACE_SECONDS = 60.0
# After SIGTERM, readiness is NOT_SERVING at once but calls still arriving are served this long
# (the endpoint's removal from the Service races the signal), then the drain.
DEFAULT_SHUTDOWN_DELAY_SECONDS = 5.0
# Every call ends within this, even one whose caller set no deadline.
DEFAULT_MAX_CALL_SECONDS = 300.0
# Calls in flight by default: they wait on the network, not the processor, but each holds a
# thread and its memory; enough for a runner's bursts on a small pod.
DEFAULT_MAX_CALLS = min(64, max(32, 16 * (os.cpu_count() or 2)))

# Whose AWS identity a call without an access key of its own may act with (serve.policy).
LEND_NONE = "none"
LEND_ASSUME_ROLE = "assume-role"
LEND_ALL = "all"
LEND_CHOICES = (LEND_NONE, LEND_ASSUME_ROLE, LEND_ALL)

TEXT, INTEGER, NUMBER, SWITCH, LIST = "text", "integer", "number", "switch", "list"
_WHAT = {SWITCH: "true or false", INTEGER: "a whole number", NUMBER: "a number"}
LISTEN, LEND, LOAD, OPERATE = (
    "where it listens, and who may call",
    "whose AWS identity, and what a caller can reach",
    "load and stopping",
    "what the operator sees",
)
LOG_FORMATS = ("text", "json")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One flag; `kind` says how its variable's text is read (a list: comma-separated)."""

    name: str
    kind: str
    default: Any
    help: str
    group: str
    metavar: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def from_text(self, text: str) -> Any:
        """The value a variable's text means; ValueError (naming the variable) if none."""
        try:
            if self.kind == SWITCH:
                return {"1": True, "true": True, "yes": True, "0": False, "false": False,
                        "no": False, "": False}[text.strip().lower()]  # fmt: skip
            if self.kind == INTEGER:
                return int(text)
            if self.kind == NUMBER:
                return float(text)
        except (KeyError, ValueError):
            raise ValueError(f"{self.variable}={text!r} is not {_WHAT[self.kind]}") from None
        if self.kind == LIST:
            return [item.strip() for item in text.split(",") if item.strip()]
        if self.choices and text not in self.choices:
            raise ValueError(f"{self.variable}={text!r}: one of {', '.join(self.choices)}")
        return text


SETTINGS = (
    Setting("host", TEXT, DEFAULT_HOST, "address to listen on", LISTEN),
    Setting("port", INTEGER, DEFAULT_PORT, "port to listen on", LISTEN),
    Setting("unix", TEXT, None, "listen on this Unix socket instead (mode 0600)", LISTEN, "PATH"),
    Setting("tls_cert", TEXT, None, "the server's certificate (chain)", LISTEN, "PEM"),
    Setting("tls_key", TEXT, None, "the server's private key", LISTEN, "PEM"),
    Setting(
        "tls_client_ca", TEXT, None, "mutual TLS: clients certified by this CA...", LISTEN, "PEM"
    ),
    Setting(
        "tls_client_name",
        LIST,
        [],
        "...whose certificate names this DNS name or URI (repeatable; required with "
        "--tls-client-ca)",
        LISTEN,
        "NAME",
    ),
    Setting(
        "insecure_plaintext",
        SWITCH,
        False,
        "listen in plaintext off loopback, on a network closed to all but the runner",
        LISTEN,
    ),
    Setting(
        "lend_identity",
        TEXT,
        LEND_NONE,
        "a call whose connection has no access key acts with the server's own identity: never "
        f"({LEND_NONE}), only to assume an allowed role, or always",
        LEND,
        choices=LEND_CHOICES,
    ),
    Setting(
        "allow_role_arn",
        LIST,
        [],
        "with --lend-identity assume-role: a role ARN (or pattern with *) it may assume "
        "(repeatable)",
        LEND,
        "PATTERN",
    ),
    Setting(
        "allow_endpoint",
        LIST,
        [],
        "an endpoint_url a connection may name (a URL, or scheme://host:* for any port; "
        "repeatable); none by default",
        LEND,
        "URL",
    ),
    Setting(
        "vault_prefix",
        LIST,
        [],
        "the vault names a call may write start with this (repeatable)",
        LEND,
        "PREFIX",
    ),
    Setting(
        "max_calls",
        INTEGER,
        DEFAULT_MAX_CALLS,
        "ExecuteAction/TestCredentials calls at once; more are refused",
        LOAD,
        "N",
    ),
    Setting(
        "max_call_seconds",
        NUMBER,
        DEFAULT_MAX_CALL_SECONDS,
        "every call ends within this, deadline or not",
        LOAD,
        "SECONDS",
    ),
    Setting(
        "grace",
        NUMBER,
        DEFAULT_GRACE_SECONDS,
        "on SIGTERM/SIGINT, time the calls in flight have to finish; the process exits within "
        "4 s after, whatever they wait on",
        LOAD,
        "SECONDS",
    ),
    Setting(
        "shutdown_delay",
        NUMBER,
        DEFAULT_SHUTDOWN_DELAY_SECONDS,
        "on SIGTERM/SIGINT, readiness turns NOT_SERVING at once and calls still arriving are "
        "served this long, before the grace",
        LOAD,
        "SECONDS",
    ),
    Setting(
        "log_format",
        TEXT,
        "text",
        "the server's own log on stderr: text, or one JSON object a line (time, level, "
        "message, call id)",
        OPERATE,
        choices=LOG_FORMATS,
    ),
    Setting(
        "metrics_port",
        INTEGER,
        None,
        "serve Prometheus metrics on this port (off unless given)",
        OPERATE,
        "PORT",
    ),
    Setting(
        "metrics_host",
        TEXT,
        DEFAULT_HOST,
        "the address the metrics port listens on",
        OPERATE,
        "HOST",
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def resolve(given: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Each setting's value: its flag's if given (not None), else its variable's, else the
    default. ValueError naming the variable for one that cannot be read."""
    values = {}
    for setting in SETTINGS:
        flag_value = given.get(setting.name)
        if flag_value is not None:
            values[setting.name] = flag_value
        elif setting.variable in environ:
            values[setting.name] = setting.from_text(environ[setting.variable])
        else:
            values[setting.name] = setting.default
    return values
