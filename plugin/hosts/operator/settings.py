"""`serve`'s settings, once: each flag's name, kind, default, help, and the environment
variable that sets it too (containers are configured so; a flag wins over its variable),
written as the fields of one typed object (ServeSettings), which `resolve` builds.

One grammar for both: a flag's text and its variable's are read by the same rules (a list's
variable is what repeating the flag is, its items separated by whitespace; a number is plain
decimal digits, within its range), and whatever cannot be read is one line naming the flag or
variable, exit 2, before anything listens.

No grpc here: the command line shows these without importing it (the `run` path never pays
for it).
"""

# ruff: noqa: RUF009 (ServeSettings' defaults are `row(...)`: dataclasses.field with its metadata)

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "IAM_CREATE_ACCESS_KEY_"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337
DEFAULT_GRACE_SECONDS = 60.0
# After SIGTERM, readiness is NOT_SERVING at once but calls still arriving are served this long
# (the endpoint's removal from the Service races the signal), then the drain.
DEFAULT_SHUTDOWN_DELAY_SECONDS = 5.0
# Without --max-call-seconds a call may run as long as the grace, so that none outlives the
# drain at SIGTERM; this value serves only when the grace is 0 (calls are cut at SIGTERM).
DEFAULT_MAX_CALL_SECONDS = DEFAULT_GRACE_SECONDS
# Every seconds setting is at most a day: no pod waits longer to stop, and whatever the stop
# adds up (grace, delays, the few seconds after) stays far inside what a timer accepts
# (threading's waits refuse more than threading.TIMEOUT_MAX, about 292 years; grpc's stop(grace)
# raised OverflowError at SIGTERM for a grace of 1e308).
MOST_SECONDS = 86400.0
# Calls in flight at most. Each holds an open file (its socket to AWS) and two threads while it
# runs: 1000 calls held by a dripping endpoint took 1009 open files, 2008 threads and 182 MiB
# (`python -m tests.measure_in_flight 1000`; a working call costs more, ~0.75 MiB: 50 MiB idle,
# 74 MiB at 32 calls, `python -m tests.measure_serve`). 1024 is the soft limit of open files
# most Linux systems give a process (RLIMIT_NOFILE, `ulimit -n`; a container's may be higher):
# past it, calls would fail on their sockets instead of being refused cleanly. More capacity
# is more replicas, not a bigger process.
MOST_CALLS = 1024
# The largest answer sent: gRPC's default receive limit (4 MiB, in Go and Python alike), which
# the runner's must be at least. An answer larger is not sent and its key is deleted; a context
# that would make it so is refused before anything is created. At most the 5 MiB the server's
# messages may be, at least enough for an answer's own fields (serve.translation's reserve).
DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024
LEAST_ANSWER_BYTES, MOST_ANSWER_BYTES = 256 * 1024, 5 * 1024 * 1024
# The requests the calls in flight carry, in bytes, in all (as received: only their context,
# echoed back, can be large). A 4 MiB request costs several times its size while its call runs
# (the message grpc received, the parsed request, the echo, the answer, its serialized bytes
# and grpc's buffers), and glibc keeps some of it after. Measured with the red team's attack
# (32 clients, each sending 3 rounds of 4 MiB contexts; `python -m tests.measure_context`):
# peak RSS 160 MiB with 8 MiB, 250-270 MiB with 16, 374 MiB with 32 (1.37 GiB with no budget).
# 8 MiB (two of the largest requests at once, or a hundred ordinary ones of tens of KiB) keeps
# the peak about 100 MiB under the Deployment's 256 MiB limit.
DEFAULT_MAX_BYTES_IN_FLIGHT = 8 * 1024 * 1024
MOST_BYTES_IN_FLIGHT = 1024 * 1024 * 1024
CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """The CPUs this process's cgroup may use (a pod's CPU limit), or None without a limit:
    cgroup v2's cpu.max ("quota period" or "max period"), else v1's cfs quota and period."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if int(quota) <= 0 else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def available_cpus(root: Path = CGROUP) -> float:
    """The processors this process may use: those it may run on (the node's, or its CPU set),
    capped by its cgroup's limit (os.cpu_count() sees the node's, whatever the pod's limit)."""
    schedulable = getattr(os, "sched_getaffinity", None)
    node = len(schedulable(0)) if schedulable else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    return node if limit is None else min(float(node), limit)


def default_max_calls(cpus: float) -> int:
    """Calls in flight by default: they wait on the network, not the processor, but each holds
    a worker and its memory; enough for a runner's bursts on a small pod. 16 per processor
    the pod may use, at least 32, at most 64."""
    return min(64, max(32, math.ceil(16 * cpus)))


DEFAULT_MAX_CALLS = default_max_calls(available_cpus())

# Whose AWS identity a call without an access key of its own may act with (operator.policy).
LEND_NONE = "none"
LEND_ASSUME_ROLE = "assume-role"
LEND_ALL = "all"
LEND_CHOICES = (LEND_NONE, LEND_ASSUME_ROLE, LEND_ALL)

TEXT, INTEGER, NUMBER, SWITCH, LIST, PATH = "text", "integer", "number", "switch", "list", "path"
_SWITCHES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
LISTEN, LEND, LOAD, OPERATE = (
    "where it listens, and who may call",
    "whose AWS identity, and what a caller can reach",
    "load and stopping",
    "what the operator sees",
)
LOG_FORMATS = ("text", "json")
MAX_PORT = 65535
# What the kubelet injects for every Service of the namespace (service links, Kubernetes'
# pkg/kubelet/envvars/envvars.go FromServices): for a Service
# named iam-create-access-key, IAM_CREATE_ACCESS_KEY_PORT=tcp://10.0.0.7:1337 beside
# ..._PORT_1337_TCP(_PROTO|_PORT|_ADDR), ..._SERVICE_HOST and ..._SERVICE_PORT(_<name>); for one
# named iam-create-access-key-metrics, IAM_CREATE_ACCESS_KEY_METRICS_PORT=tcp://... Only names
# ending in _PORT can be one of ours (tests/test_serve_settings.py keeps it so), and a port's
# value in this shape is never the operator's: it is read as unset.
SERVICE_LINK = re.compile(r"(tcp|udp|sctp)://\S+:\d+")
# Numbers are written in plain decimal digits, flag or variable: int() and float() would also
# read 1_000, 1e3, digits of other scripts, nan and inf, which no operator means.
_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
# An --allow-role-arn pattern: a role ARN whose account may be * and whose path and name may
# hold * (policy matches them with fnmatch), in a partition's own spelling (aws, aws-cn, ...).
ROLE_PATTERN = re.compile(r"arn:aws(-[a-z]+)*:iam::([0-9]{12}|\*):role/[\w+=,.@/*-]+", re.ASCII)
# A --vault-prefix: the start of a vault name, which holds no comma (schemas/input.schema.json's
# vault pattern): "team/,ops/" is the comma list the Shuffle app once read, never a prefix.
VAULT_PREFIX_PATTERN = re.compile(r"[^,]+")


class SettingError(ValueError):
    """A flag's or variable's text that means nothing: the message names it, in one line."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One flag, its variable, and how the text of either is read: a list's variable holds
    its items separated by whitespace (which no role ARN, URL, DNS name or vault name can
    contain, while an IAM role name and a URI can contain commas)."""

    name: str
    kind: str
    default: Any
    help: str
    group: str
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    # bounds of a number (inclusive); `above` is an exclusive lower bound
    least: float | None = None
    most: float | None = None
    above: float | None = None
    # what a list's every item must look like: (its pattern, the shape said in words)
    shape: tuple[re.Pattern[str], str] | None = None
    # how the README's table says the default where its value alone would not (a default the
    # machine decides, one that follows another setting, what "none" means here)
    said_default: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def from_flag(self, given: Any) -> Any:
        """The value a flag's text (a list's: each repetition's) means; SettingError if none."""
        if self.kind == SWITCH:
            return bool(given)
        if self.kind == LIST:
            return [self._item(self.flag, text) for text in given]
        return self._read(self.flag, given.strip())

    def from_text(self, text: str) -> Any:
        """The value a variable's text means, None for unset (blank, or a Kubernetes service
        link on a port's variable); SettingError naming the variable if none."""
        if not text.strip() or (
            self.variable.endswith("_PORT") and SERVICE_LINK.fullmatch(text.strip())
        ):
            return None
        if self.kind == LIST:
            return [self._item(self.variable, item) for item in text.split()]
        if self.kind == SWITCH:
            switch = _SWITCHES.get(text.strip().lower())
            if switch is None:
                raise SettingError(f"{self.variable}={text!r} is not true or false")
            return switch
        return self._read(self.variable, text.strip())

    def _item(self, source: str, text: str) -> str:
        if not text.strip() or text.split() != [text]:
            raise SettingError(f"{source}={text!r}: an item is one word, neither blank nor spaced")
        if self.shape is not None:
            if text.endswith(","):  # "a, b" read as items "a," and "b": the old comma list
                raise SettingError(
                    f"{source}={text!r} ends in a comma: a list's items are separated by "
                    "whitespace, not commas"
                )
            pattern, shape = self.shape
            if not pattern.fullmatch(text):
                raise SettingError(f"{source}={text!r} is not {shape}")
        return text

    def _read(self, source: str, text: str) -> Any:
        if not text.strip():
            raise SettingError(f"{source} is blank")
        if self.choices and text not in self.choices:
            raise SettingError(f"{source}={text!r}: one of {', '.join(self.choices)}")
        if self.kind == INTEGER:
            if not _WHOLE.fullmatch(text):
                raise SettingError(f"{source}={text!r} is not a whole number (decimal digits only)")
            try:
                number: float = int(text)
            except ValueError:  # more digits than int() reads (4300): out of any range
                number = math.inf
        elif self.kind == NUMBER:
            if not _DECIMAL.fullmatch(text):
                shape = "a number in decimal digits (such as 60 or 2.5)"
                with contextlib.suppress(ValueError):
                    shape = shape if math.isfinite(float(text)) else "a finite number"
                raise SettingError(f"{source}={text!r} is not {shape}")
            number = float(text)  # digits beyond a float's range read as inf: out of range
        else:
            return Path(text) if self.kind == PATH else text
        if (
            (self.least is not None and number < self.least)
            or (self.most is not None and number > self.most)
            or (self.above is not None and number <= self.above)
        ):
            raise SettingError(f"{source}={text!r} is not {self._range()}")
        return number

    def _range(self) -> str:
        if self.least is not None:
            low = _shown(self.least)
            if self.most is not None:
                return f"from {low} to {_shown(self.most)}"
            return f"{low} or more"
        low = f"more than {_shown(self.above)}" if self.above is not None else ""
        high = f"at most {_shown(self.most)}" if self.most is not None else ""
        return " and ".join(part for part in (low, high) if part)


def _overlap(host: str, other: str) -> bool:
    """Whether listeners on these two hosts would share a port (a wildcard takes them all)."""
    wildcards = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 (recognised, not bound)
    return host == other or host in wildcards or other in wildcards


def _shown(bound: float) -> str:
    """A bound as an operator writes it: a whole number in all its digits (1073741824, not
    1.07374e+09, which no setting would read), else as a decimal."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


_ROW = "setting"  # the key of a field's Setting in its metadata


def row(
    kind: str,
    default: Any,
    help: str,
    group: str,
    metavar: str | None = None,
    **reading: Any,
) -> Any:
    """A field of ServeSettings that is a setting: its flag's and variable's grammar (a Setting,
    named by the field) in the field's metadata; a list's default is a new empty list."""
    setting = Setting("", kind, default, help, group, metavar, **reading)
    if isinstance(default, list):
        return dataclasses.field(default_factory=list, metadata={_ROW: setting})
    return dataclasses.field(default=default, metadata={_ROW: setting})


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """What `serve` runs with: one field per setting, its type the value's, and the field's
    `row` its flag, variable, default, help and how their text is read. The class is the table:
    a new row here is a new flag, a new variable and a new typed value, with nothing else to
    edit. Built once by `resolve` (flags, then variables, then defaults) and handed whole to the
    server, the listener and the health command; read as `settings.port` (typed) or, where a
    name is data, `settings["port"]`."""

    host: str = row(TEXT, DEFAULT_HOST, "address to listen on", LISTEN)
    port: int = row(INTEGER, DEFAULT_PORT, "port to listen on", LISTEN, least=0, most=MAX_PORT)
    unix: Path | None = row(
        PATH,
        None,
        "listen on this Unix socket instead (mode 0600)",
        LISTEN,
        "PATH",
        said_default="(TCP)",
    )
    tls_cert: Path | None = row(PATH, None, "the server's certificate (chain)", LISTEN, "PEM")
    tls_key: Path | None = row(PATH, None, "the server's private key", LISTEN, "PEM")
    tls_client_ca: Path | None = row(
        PATH, None, "mutual TLS: clients certified by this CA...", LISTEN, "PEM"
    )
    tls_client_name: list[str] = row(
        LIST,
        [],
        "...whose certificate names this DNS name or URI (repeatable; required with "
        "--tls-client-ca)",
        LISTEN,
        "NAME",
    )
    insecure_plaintext: bool = row(
        SWITCH,
        False,
        "listen in plaintext off loopback, on a network closed to all but the runner",
        LISTEN,
    )
    lend_identity: str = row(
        TEXT,
        LEND_NONE,
        "a call whose connection has no access key acts with the server's own identity: never "
        f"({LEND_NONE}), only to assume an allowed role, or always",
        LEND,
        choices=LEND_CHOICES,
    )
    allow_role_arn: list[str] = row(
        LIST,
        [],
        "with --lend-identity assume-role: a role ARN (or pattern with *) it may assume "
        "(repeatable)",
        LEND,
        "PATTERN",
        shape=(
            ROLE_PATTERN,
            "a role ARN pattern (arn:PARTITION:iam::ACCOUNT-or-*:role/NAME, * allowed in NAME)",
        ),
    )
    role_external_id: list[str] = row(
        LIST,
        [],
        "with --lend-identity assume-role: the external ID it assumes allowed roles with: ID "
        "for all of them, or 'PATTERN|ID' for the roles PATTERN matches (repeatable; the first "
        "match wins); never a caller's",
        LEND,
        "[PATTERN|]ID",
    )
    allow_endpoint: list[str] = row(
        LIST,
        [],
        "an endpoint_url a connection may name (a URL, or scheme://host:* for any port; "
        "repeatable); none by default",
        LEND,
        "URL",
    )
    vault_prefix: list[str] = row(
        LIST,
        [],
        "the vault names a call may write start with this (repeatable)",
        LEND,
        "PREFIX",
        shape=(
            VAULT_PREFIX_PATTERN,
            "a vault name prefix: vault names hold no commas, so separate prefixes with spaces",
        ),
        said_default="(any name the action created)",
    )
    expiry_role_arn: str | None = row(
        TEXT,
        None,
        "the role EventBridge Scheduler deletes expiring keys with, for a call that gives "
        "Expires After and no Expiry Role ARN of its own",
        LEND,
        "ARN",
        said_default="(none: a call with Expires After and no role of its own is code 2)",
    )
    max_calls: int = row(
        INTEGER,
        DEFAULT_MAX_CALLS,
        "ExecuteAction/TestCredentials calls at once, at most 1024; more are refused (16 per "
        "processor the pod may use, its cgroup's CPU limit included, 32 to 64)",
        LOAD,
        "N",
        least=1,
        most=MOST_CALLS,
        said_default="16 per processor the pod may use (cgroup `cpu.max`), 32 to 64",
    )
    # None in the table (no flag, no variable): the grace, or DEFAULT_MAX_CALL_SECONDS without
    # one (__post_init__); never None once built.
    max_call_seconds: float = row(
        NUMBER,
        None,
        "every call ends within this, deadline or not; at most the grace, which is its "
        "default, so that no call outlives the drain",
        LOAD,
        "SECONDS",
        above=0,
        most=MOST_SECONDS,
        said_default="the grace",
    )
    max_answer_bytes: int = row(
        INTEGER,
        DEFAULT_MAX_ANSWER_BYTES,
        "the largest answer sent, at most the runner's receive limit (gRPC's default: 4 MiB); "
        "a larger one is not sent and its key is deleted, a context that would make one is "
        "refused before anything is created (262144 to 5242880)",
        LOAD,
        "BYTES",
        least=LEAST_ANSWER_BYTES,
        most=MOST_ANSWER_BYTES,
    )
    max_bytes_in_flight: int = row(
        INTEGER,
        DEFAULT_MAX_BYTES_IN_FLIGHT,
        "the contexts of the calls in flight, in bytes, in all; a call that would pass it is "
        "refused (RESOURCE_EXHAUSTED) before any AWS request; a call alone always passes",
        LOAD,
        "BYTES",
        least=1,
        most=MOST_BYTES_IN_FLIGHT,
    )
    grace: float = row(
        NUMBER,
        DEFAULT_GRACE_SECONDS,
        "on SIGTERM/SIGINT, time the calls in flight have to finish (at most a day); the "
        "process exits within 4 s after, whatever they wait on",
        LOAD,
        "SECONDS",
        least=0,
        most=MOST_SECONDS,
    )
    shutdown_delay: float = row(
        NUMBER,
        DEFAULT_SHUTDOWN_DELAY_SECONDS,
        "on SIGTERM/SIGINT, readiness turns NOT_SERVING at once and calls still arriving are "
        "served this long, before the grace (at most a day)",
        LOAD,
        "SECONDS",
        least=0,
        most=MOST_SECONDS,
    )
    log_format: str = row(
        TEXT,
        "text",
        "the server's own log on stderr: text, or one JSON object a line (time, level, "
        "message, call id)",
        OPERATE,
        choices=LOG_FORMATS,
    )
    metrics_port: int | None = row(
        INTEGER,
        None,
        "serve Prometheus metrics on this port (off unless given)",
        OPERATE,
        "PORT",
        least=0,
        most=MAX_PORT,
        said_default="(no metrics)",
    )
    metrics_host: str = row(
        TEXT,
        DEFAULT_HOST,
        "the address the metrics port listens on",
        OPERATE,
        "HOST",
    )
    health_port: int | None = row(
        INTEGER,
        None,
        "also answer grpc.health.v1 alone, in plaintext, on this port of --host (127.0.0.1 "
        "with --unix), outside the main port's connection cap: for the kubelet's probes, "
        "which speak no TLS (off unless given)",
        OPERATE,
        "PORT",
        least=0,
        most=MAX_PORT,
        said_default=(
            "(health on the main port only); the image passes the flag `--health-port 1338`, "
            "which wins over the variable: there the variable moves nothing, "
            '`args: [--health-port, "N"]` does'
        ),
    )
    health_socket: Path | None = row(
        PATH,
        None,
        "also answer grpc.health.v1 alone on this Unix socket (mode 0600), which no network "
        "caller can reach or fill: for exec probes (`iam-create-access-key health "
        "--health-socket PATH`); a socket left by a killed server is replaced (off unless given)",
        OPERATE,
        "PATH",
        said_default="(none; the image: `/run/iam-create-access-key/health.sock`)",
    )

    def __post_init__(self) -> None:
        """The call time the grace implies when none is given; refused if it outlives it."""
        grace, longest = self.grace, self.max_call_seconds
        if longest is None:  # frozen: set once, here, as the dataclass's own __init__ does
            object.__setattr__(self, "max_call_seconds", grace or DEFAULT_MAX_CALL_SECONDS)
        elif grace and longest > grace:
            raise SettingError(
                f"--max-call-seconds ({longest:g}) is longer than --grace ({grace:g}): a call "
                "could outlive the drain at SIGTERM; lower it, or raise --grace"
            )
        self._ports_of_its_own()

    def _ports_of_its_own(self) -> None:
        """Two of its own listeners on one port: said as such, before anything listens (the
        second bind would say "another process listens on it", which is this one)."""
        health_host = DEFAULT_HOST if self.unix is not None else self.host
        listeners = [
            ("--metrics-port", self.metrics_port, self.metrics_host),
            ("--health-port", self.health_port, health_host),
        ]
        if self.unix is None:
            listeners.insert(0, ("--port", self.port, self.host))
        for at, (flag, port, host) in enumerate(listeners):
            for other, other_port, other_host in listeners[at + 1 :]:
                if port and port == other_port and _overlap(host, other_host):
                    raise SettingError(
                        f"{other} {other_port} is {flag}'s too: each of serve's listeners "
                        "needs a port of its own"
                    )

    def __getitem__(self, name: str) -> Any:
        """A setting's value by its name (the table's rows are data too: SETTINGS)."""
        if name not in BY_NAME:
            raise KeyError(name)
        return getattr(self, name)


# The table's rows, in its order, each named by its field.
SETTINGS = tuple(
    dataclasses.replace(field.metadata[_ROW], name=field.name)
    for field in dataclasses.fields(ServeSettings)
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def resolve(
    given: Mapping[str, Any], environ: Mapping[str, str], only: Collection[str] = ()
) -> ServeSettings:
    """Each setting's value: its flag's if given (not None), else its variable's (unless blank
    or a service link), else the default. SettingError, naming the flag or variable, for
    text that cannot be read or settings that contradict each other. `only`: read just these
    (the rest keep their defaults), for a command that needs a few, such as `health`, whose
    probe must not fail on a setting serve reads from its own arguments."""
    values = {}
    for setting in SETTINGS:
        if only and setting.name not in only:
            continue
        flag_value = given.get(setting.name)
        value = None
        if flag_value is not None:
            value = setting.from_flag(flag_value)
        elif setting.variable in environ:
            value = setting.from_text(environ[setting.variable])
        if value is not None:
            values[setting.name] = value
    if values.get("unix") and given.get("insecure_plaintext") is None:
        # The image's ENV says plaintext because it listens on the pod network by default; a
        # Unix socket is a listener that switch does not describe (never TLS, never on a
        # network, mode 0600), so the variable yields to it and loosens nothing. Typed beside
        # --unix, the flag is still refused as a contradiction (serve.listener).
        values["insecure_plaintext"] = False
    return ServeSettings(**values)
