"""The command line: `run` for people, `execute` for engines, and the helpers around them."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plugin.contract import resources, validation
from plugin.contract.errors import ActionError, Category
from plugin.runtime import redaction

if TYPE_CHECKING:
    from plugin.engine import Response
    from plugin.hosts.operator.settings import ServeSettings

PROG = "iam-create-access-key"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is the error code (0 on success)."""
    # A short process allocates a great deal while importing botocore and reading its models,
    # and frees almost none of it: the collector's passes are pure cost here.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    finally:
        if collecting:
            gc.enable()


def _main(argv: list[str]) -> int:
    arguments = _parser(with_help=bool({"-h", "--help"} & set(argv)) or not argv).parse_args(argv)
    arguments.debug = arguments.debug or arguments.debug_first
    if arguments.debug:
        _log_everything_redacted()
    try:
        status: int = arguments.command(arguments)
        return status
    except ActionError as error:
        return _fail(error)
    except Exception:
        # A bug: one line for the person, the (redacted) traceback only under --debug. Logged
        # as an error, not at DEBUG, so that it shows whatever level a command left its
        # loggers at (serve keeps "plugin" at INFO for the steps' own logs).
        if arguments.debug:
            logging.getLogger(__name__).error("internal error", exc_info=True)
        return _fail(
            ActionError("internal error (run with --debug for details)", Category.INTERNAL)
        )


def _parser(with_help: bool) -> argparse.ArgumentParser:
    """The command line. Flags come from the input schema; the manifest's help texts (YAML,
    slower to load) only when help is asked for."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="log everything, botocore's wire log too (redacted)"
    )
    signing_in = argparse.ArgumentParser(add_help=False)
    group = signing_in.add_argument_group("signing in (else the standard AWS environment)")
    group.add_argument("--profile", help="the AWS config profile to sign in with (AWS_PROFILE)")
    for field, text in _CONNECTION_FLAGS.items():
        group.add_argument("--" + field.replace("_", "-"), dest=field, metavar="VALUE", help=text)
    title = resources.manifest()["display_name"] if with_help else None
    parser = argparse.ArgumentParser(prog=PROG, description=title)
    # Before the command too (the README's "--debug (on any command)"): its own dest, since a
    # command's default would overwrite the top level's value (argparse sets sub-defaults last).
    parser.add_argument(
        "--debug",
        dest="debug_first",
        action="store_true",
        help="log everything, botocore's wire log too (redacted); before or after the command",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", parents=[common, signing_in], help="create a key; print the result"
    )
    help_texts = _help_texts() if with_help else {}
    for name, rules in resources.schema("input")["properties"].items():
        _add_parameter_flag(run, name, rules, help_texts.get(name))
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="end the whole invocation, retries and reconciliation included, within this time",
    )
    run.add_argument(
        "--output-file",
        metavar="PATH",
        help="write the result to a new file with mode 0600 instead of stdout (never "
        "overwrites, never follows a symlink)",
    )
    run.set_defaults(command=_run)

    execute = commands.add_parser(
        "execute", parents=[common], help="read one engine request (JSON) on stdin"
    )
    execute.set_defaults(command=_execute)

    check = commands.add_parser(
        "test-connection",
        parents=[common, signing_in],
        help="check the connection (sts:GetCallerIdentity); create nothing",
    )
    check.set_defaults(command=_test_connection)

    describe = commands.add_parser("describe", parents=[common], help="print the manifest")
    describe.set_defaults(command=_describe)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the Blink plugin protocol (gRPC integration_pack.Plugin) to a runner",
        description="Serve the action to a runner. See the README's Security model: who may "
        "call, whose AWS identity signs, and what a caller can reach.",
    )
    _add_serve_flags(serve)
    serve.set_defaults(command=_serve)

    health = commands.add_parser(
        "health",
        parents=[common],
        help="probe a running serve (grpc.health.v1): one line; exit 0 when SERVING, else 1",
    )
    from .operator.settings import BY_NAME

    for name in ("host", "port", "unix", "health_port", "health_socket"):
        setting = BY_NAME[name]
        health.add_argument(
            setting.flag,
            dest=name,
            metavar=setting.metavar,
            default=None,
            help=f"the server's {name} (env {setting.variable}; default {setting.default})",
        )
    health.add_argument(
        "--timeout", type=float, default=3.0, metavar="SECONDS", help="wait this long (3)"
    )
    health.set_defaults(command=_health)

    demo = commands.add_parser(
        "demo", parents=[common], help="walk through the action on an embedded local IAM"
    )
    for name, rules in resources.schema("input")["properties"].items():
        if name not in DEMO_FIXED:  # the demo's own chain supplies these
            _add_parameter_flag(demo, name, rules, help_texts.get(name))
    demo.add_argument(
        "--identity",
        metavar="FILE",
        help="with --seal-secret-to its recipient: the age identity the demo opens the sealed "
        "secret with (make one with unseal --new-identity FILE)",
    )
    demo.set_defaults(command=_demo)

    unseal = commands.add_parser(
        "unseal",
        parents=[common],
        help="open a sealed secret: a step's result (or sealed text) on stdin, opened on stdout",
    )
    unsealing = unseal.add_mutually_exclusive_group(required=True)
    unsealing.add_argument("--identity", metavar="FILE", help="the age identity file to open with")
    unsealing.add_argument(
        "--new-identity",
        metavar="FILE",
        help="make an identity in a new file (mode 0600) and print its recipient (age1...)",
    )
    unseal.set_defaults(command=_unseal)
    return parser


def _help_texts() -> dict[str, str]:
    return {entry["name"]: entry["description"] for entry in resources.manifest()["parameters"]}


def _add_parameter_flag(
    parser: argparse.ArgumentParser, name: str, rules: dict[str, Any], help_text: str | None
) -> None:
    """One flag per parameter: --user-name for user_name, a switch for a boolean."""
    flag = "--" + name.replace("_", "-")
    text = help_text.replace("%", "%%") if help_text else None
    choices = [str(choice) for choice in rules.get("enum", [])]
    if rules.get("type") == "boolean":
        parser.add_argument(flag, dest=name, action="store_true", help=text)
    elif choices:  # the form's values, in any case on the command line (active = Active)
        by_folded = {choice.casefold(): choice for choice in choices}
        parser.add_argument(
            flag,
            dest=name,
            type=lambda value: by_folded.get(value.casefold(), value),
            choices=choices,
            metavar="{" + ",".join(choices) + "}",
            help=text,
        )
    else:
        parser.add_argument(flag, dest=name, metavar="VALUE", help=text)


_CONNECTION_FLAGS = {
    "role_arn": "a role to assume before acting",
    "external_id": "the external ID the role's trust policy asks for",
    "endpoint_url": "one custom endpoint for every AWS call: IAM, STS, and the vault's SSM or "
    "Secrets Manager, as LocalStack and moto serve them (https, or http on loopback)",
}


def _connection(arguments: argparse.Namespace) -> dict[str, str]:
    """The connection a person's flags describe; the rest comes from the AWS environment."""
    if arguments.profile:
        os.environ["AWS_PROFILE"] = arguments.profile  # exactly what the AWS CLI's flag means
    given = {field: getattr(arguments, field) for field in _CONNECTION_FLAGS}
    return {field: value for field, value in given.items() if value is not None}


# What the demo's workflow decides itself: the user comes from its "IAM Create User" step.
DEMO_FIXED = ("regions", "user_name")


def _parameters(arguments: argparse.Namespace, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The parameters given as flags (one per input-schema property)."""
    names = [name for name in resources.schema("input")["properties"] if name not in exclude]
    given = {name: getattr(arguments, name) for name in names}
    return {name: value for name, value in given.items() if value not in (None, False)}


def _run(arguments: argparse.Namespace) -> int:
    parameters = _parameters(arguments)
    request: dict[str, Any] = {"parameters": parameters, "connection": _connection(arguments)}
    if arguments.timeout is not None:
        request["timeout"] = arguments.timeout
    if arguments.output_file is None:
        return _run_to(request, sys.stdout.write)
    from plugin.delivery.output_file import reserved

    with reserved(arguments.output_file) as reservation:
        status = _run_to(request, reservation.deliver)
    if status == 0:
        print(f"{PROG}: the result is in {arguments.output_file} (mode 0600)", file=sys.stderr)
    return status


def _run_to(request: dict[str, Any], deliver: Callable[[str], object]) -> int:
    """Run the action; hand the result alone to `deliver`, or report the error. A result that
    cannot be delivered is withdrawn: its key is deleted (or named, if that fails)."""
    from plugin.engine import respond, withdraw

    response = respond(request)
    if not response.ok:
        return _fail_response(response)
    result = response.result
    try:
        deliver((result if isinstance(result, str) else json.dumps(result, indent=2)) + "\n")
    except ActionError as error:
        try:
            key_id = withdraw(request, response)
        except ActionError as left:  # the key left behind, after why it was not delivered
            return _fail(ActionError(error.message, left.category, advice=f"; {left.message}"))
        gone = f"; key {key_id} was deleted, so nothing is left behind" if key_id else ""
        return _fail(error.within(advice=gone))
    return 0


def _execute(arguments: argparse.Namespace) -> int:
    from plugin.contract.json_input import UnreadableJSON, loads
    from plugin.engine import Response, respond

    try:
        request = loads(sys.stdin.buffer.read(), object_pairs_hook=_refuse_duplicates)
    except ValueError as error:
        if isinstance(error, (_DuplicateKey, UnreadableJSON)):
            why = str(error)
        else:
            why = "it is not valid UTF-8 JSON"
        response = Response.failure(ActionError(f"Invalid input: {why}", Category.INVALID_INPUT))
    else:
        response = respond(request)
    print(json.dumps(response.as_mapping()))
    return 0 if response.ok else _fail_response(response)


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON allows a name twice and keeps the last; a request that does so is ambiguous."""
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _DuplicateKey(f"the field {validation.field_name(name)} is given twice")
        seen[name] = value
    return seen


def _test_connection(arguments: argparse.Namespace) -> int:
    from plugin.engine import respond_to_connection_test

    response = respond_to_connection_test({"connection": _connection(arguments)})
    if not response.ok:
        return _fail_response(response)
    print(json.dumps(response.result, indent=2))
    return 0


def _describe(arguments: argparse.Namespace) -> int:
    from plugin.contract.manifest import describe

    print(json.dumps(describe(), indent=2))
    return 0


def _add_serve_flags(serve: argparse.ArgumentParser) -> None:
    """One flag per setting (operator.settings); each also read from its variable. Values stay
    text here: operator.settings reads a flag's and its variable's by the same rules."""
    from .operator.settings import LIST, SETTINGS, SWITCH

    groups: dict[str, Any] = {}
    for setting in SETTINGS:
        group = groups.get(setting.group) or groups.setdefault(
            setting.group, serve.add_argument_group(setting.group)
        )
        default = "" if setting.default in (None, [], False) else f"; default {setting.default}"
        text = f"{setting.help} (env {setting.variable}{default})".replace("%", "%%")
        if setting.kind == SWITCH:
            group.add_argument(setting.flag, dest=setting.name, action="store_true",
                               default=None, help=text)  # fmt: skip
        else:
            group.add_argument(
                setting.flag,
                dest=setting.name,
                action="append" if setting.kind == LIST else "store",
                metavar=setting.metavar
                or ("{" + ",".join(setting.choices) + "}" if setting.choices else None),
                default=None,
                help=text,
            )


def _serve_settings(arguments: argparse.Namespace, only: tuple[str, ...] = ()) -> ServeSettings:
    """The settings the flags and the environment give (`only` these, if named); a flag wins
    over its variable."""
    from .operator.settings import resolve

    try:
        return resolve(vars(arguments), os.environ, only)
    except ValueError as error:
        raise ActionError(str(error), Category.INVALID_INPUT) from None


def _serve(arguments: argparse.Namespace) -> int:
    # main() turns the collector off for a short process; a server runs for days, and a call
    # given up on at its deadline leaves reference cycles (an exception and its frames).
    gc.enable()
    try:
        from .serve.server import serve
    except ImportError as error:
        raise _needs_the_serve_extra("serve", error) from None
    return serve(_serve_settings(arguments))


def _needs_the_serve_extra(command: str, error: ImportError) -> ActionError:
    return ActionError(
        f"{command} needs the [serve] extra ({error.name} is not installed): pip install "
        "'iam-create-access-key[serve]'",
        Category.INVALID_INPUT,
    )


def _health(arguments: argparse.Namespace) -> int:
    """A grpc.health.v1 check of a running `serve`: one line; 0 when SERVING, else 1."""
    try:
        from .serve.health_check import WHERE, check
    except ImportError as error:
        raise _needs_the_serve_extra("health", error) from None
    serving, line = check(_serve_settings(arguments, WHERE), arguments.timeout)
    print(line)
    return 0 if serving else 1


def _demo(arguments: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(_parameters(arguments, exclude=DEMO_FIXED), identity=arguments.identity)


def _unseal(arguments: argparse.Namespace) -> int:
    from plugin.delivery.unseal import main

    return main(arguments.new_identity, arguments.identity)


def _fail(error: ActionError) -> int:
    print(f"{PROG}: error: {error}", file=sys.stderr)
    return error.error_code


def _fail_response(response: Response) -> int:
    """Say an engine response's error in one line on stderr; return its code."""
    print(f"{PROG}: error: {response.error_message}", file=sys.stderr)
    return response.error_code


def _log_everything_redacted() -> None:
    """--debug: every logger (botocore's wire log included) to stderr, through the redactor."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(redaction.redactor())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
