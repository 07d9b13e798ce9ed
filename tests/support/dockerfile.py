"""Read the Dockerfile's instructions (enough of the format for ours: continuation lines,
JSON-form commands, ENV key=value pairs), for tests that check it agrees with `serve` and that
perform its steps outside a container."""

from __future__ import annotations

import json
import shlex

from tests.support.paths import ROOT

PATH = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in PATH.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append((keyword.upper(), arguments.strip()))
    return found


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    every = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(every) if keyword == "FROM")
    return every[last_from:]


def environment() -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, arguments in runtime_stage():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def stage(index: int) -> list[tuple[str, str]]:
    """The instructions of one stage (0: the first FROM on)."""
    every = instructions()
    starts = [i for i, (keyword, _) in enumerate(every) if keyword == "FROM"]
    ends = [*starts[1:], len(every)]
    return every[starts[index] : ends[index]]


def commands(stage_instructions: list[tuple[str, str]]) -> list[str]:
    """The shell commands of a stage's RUN instructions, one a `&&`, in order."""
    return [
        command.strip()
        for keyword, arguments in stage_instructions
        if keyword == "RUN"
        for command in arguments.split(" && ")
    ]


def one(keyword: str) -> str:
    (arguments,) = [a for k, a in runtime_stage() if k == keyword]
    return arguments


def exec_form(keyword: str) -> list[str]:
    """ENTRYPOINT's or HEALTHCHECK's command, in exec (JSON) form."""
    arguments = one(keyword)
    if keyword == "HEALTHCHECK":
        arguments = arguments.split(" CMD ", 1)[1]
    command: list[str] = json.loads(arguments)
    return command
