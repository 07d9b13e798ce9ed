"""`serve`'s flags from the environment (a flag wins over its variable), the `health` command,
and `serve` without its extra."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from plugin.hosts.operator import settings
from plugin.hosts.operator.policy import Policy
from plugin.hosts.operator.settings import SETTINGS, SettingError, resolve
from tests.support import settings_table
from tests.support.cli import run_cli
from tests.support.grpc_plugin import PluginProcess, execute_request
from tests.support.local_iam import LocalIAM
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.serve_calls import ambient, create
from tests.support.service_links import SERVICE_LINKS


def test_every_flag_has_a_variable_and_the_readme_lists_it() -> None:
    readme = (ROOT / "README.md").read_text()
    help_text = run_cli("serve", "--help", env=dict(os.environ)).stdout
    for setting in SETTINGS:
        assert setting.variable.startswith("IAM_CREATE_ACCESS_KEY_")
        assert f"`{setting.variable}`" in readme, setting.variable
        assert f"`{setting.flag}" in readme, setting.flag
        assert setting.variable in help_text.replace("\n", " ").replace(" ", ""), setting.variable


def test_the_readme_table_of_settings_is_the_settings_table() -> None:
    """Written once: the README's flag/variable/default table is rendered from the rows
    (`python -m tests.support.settings_table` rewrites it), so a default cannot go stale there."""
    readme = (ROOT / "README.md").read_text()
    assert settings_table.in_readme(readme) == settings_table.render(), (
        "the README's settings table differs from the code: python -m tests.support.settings_table"
    )


def test_variables_configure_serve_and_a_flag_wins(iam: LocalIAM) -> None:
    port = free_port()
    by_environment = PluginProcess(
        env={
            "IAM_CREATE_ACCESS_KEY_MAX_CALLS": "1",
            "IAM_CREATE_ACCESS_KEY_ALLOW_ENDPOINT": f"https://example.org\n  {iam.url} ",
            "IAM_CREATE_ACCESS_KEY_GRACE": "5",
        },
        local_endpoints=False,
        port=str(port),  # the flag, given: it wins over the variable below
    )
    try:
        assert by_environment.port == port
        user = iam.new_user()
        response = by_environment.stub().ExecuteAction(
            execute_request({"user_name": user}, iam.connection()), timeout=30
        )
        assert response.error_code == 0, response.error_message  # the listed endpoint
        assert by_environment.terminate() == 0
        assert "at most 5 s" in by_environment.text()
    finally:
        by_environment.stop()


def test_a_variable_sets_what_no_flag_gives(iam: LocalIAM) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve"],
        cwd=ROOT,
        env={**env, "IAM_CREATE_ACCESS_KEY_PORT": str(port)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert f"on 127.0.0.1:{port} (plaintext, loopback only)" in process.stderr.readline()
        healthy = run_cli("health", env={**env, "IAM_CREATE_ACCESS_KEY_PORT": str(port)})
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout == f"127.0.0.1:{port}: SERVING\n"
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "IAM_CREATE_ACCESS_KEY_MAX_CALLS",
            "many",
            "IAM_CREATE_ACCESS_KEY_MAX_CALLS='many' is not a whole number",
        ),
        (
            "IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT",
            "maybe",
            "IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT='maybe' is not true or false",
        ),
        (
            "IAM_CREATE_ACCESS_KEY_LEND_IDENTITY",
            "everyone",
            "IAM_CREATE_ACCESS_KEY_LEND_IDENTITY='everyone': one of none, assume-role, all",
        ),
        (
            "IAM_CREATE_ACCESS_KEY_VAULT_PREFIX",
            "team/,ops/",
            "IAM_CREATE_ACCESS_KEY_VAULT_PREFIX='team/,ops/' is not a vault name prefix: vault "
            "names hold no commas, so separate prefixes with spaces",
        ),
    ],
    ids=["number", "switch", "choice", "comma"],
)
def test_a_bad_variable_is_named_and_nothing_starts(
    variable: str, value: str, expected: str
) -> None:
    completed = run_cli("serve", "--port", "0", env={**os.environ, variable: value}, timeout=30)
    assert completed.returncode == 2
    assert expected in completed.stderr
    assert "serving" not in completed.stderr


def test_health_says_not_serving_in_one_line_when_nobody_listens() -> None:
    port = free_port()
    completed = run_cli("health", "--port", str(port), "--timeout", "1", env=dict(os.environ))
    assert completed.returncode == 1
    assert completed.stdout == f"127.0.0.1:{port}: not serving (UNAVAILABLE)\n"


def test_health_over_a_unix_socket(tmp_path: object, iam: LocalIAM) -> None:
    path = f"{tmp_path}/plugin.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve", "--unix", path],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        process.stderr.readline()
        completed = run_cli("health", "--unix", path, env=dict(os.environ))
        assert (completed.returncode, completed.stdout) == (0, f"unix:{path}: SERVING\n")
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("command", ["serve", "health"])
def test_without_the_serve_extra_it_says_which_extra_to_install(command: str) -> None:
    probe = (
        "import sys\n"
        "sys.modules['grpc'] = None  # as if grpcio were not installed\n"
        "from plugin.hosts.cli import main\n"
        f"sys.exit(main(['{command}', '--port', '0']))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2
    assert (
        f"{command} needs the [serve] extra (grpc is not installed): pip install "
        "'iam-create-access-key[serve]'" in completed.stderr
    )


def test_service_links_of_any_service_are_not_settings() -> None:
    assert SERVICE_LINKS["IAM_CREATE_ACCESS_KEY_PORT"] == "tcp://10.96.14.7:1337"
    assert SERVICE_LINKS["IAM_CREATE_ACCESS_KEY_METRICS_PORT"] == "tcp://10.96.14.8:9464"
    assert resolve({}, SERVICE_LINKS) == resolve({}, {})
    image = {"IAM_CREATE_ACCESS_KEY_HOST": "0.0.0.0", "IAM_CREATE_ACCESS_KEY_GRACE": "60"}  # noqa: S104
    assert resolve({}, {**image, **SERVICE_LINKS}) == resolve({}, image)
    # whatever Service a namespace holds, no setting's variable is one the kubelet could
    # inject with a value of a setting's shape (an address, a number)
    for setting in SETTINGS:
        assert not re.search(r"_SERVICE_(HOST|PORT)|_PORT_\d+_", setting.variable)
        if setting.variable.endswith("_PORT"):
            assert setting.kind == settings.INTEGER  # a link's tcp://... is never one


def test_serve_and_health_start_beside_service_links(tmp_path: Path) -> None:
    """As the runner starts the image: nothing but its defaults and the namespace's links."""
    path = f"{tmp_path}/plugin.sock"
    env = {**os.environ, **SERVICE_LINKS}
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve", "--unix", path],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert f"serving integration_pack.Plugin on unix:{path}" in process.stderr.readline()
        completed = run_cli("health", "--unix", path, env=env)
        assert (completed.returncode, completed.stdout) == (0, f"unix:{path}: SERVING\n")
    finally:
        process.terminate()
        process.wait(30)
    assert "metrics on" not in process.stderr.read()  # the metrics Service's link is not ours


HEALTH_SOCKET = "IAM_CREATE_ACCESS_KEY_HEALTH_SOCKET"


def test_a_unix_socket_overrides_the_images_plaintext_default(tmp_path: Path) -> None:
    """The image's ENV says INSECURE_PLAINTEXT=true (for its pod-network listener); an operator
    who sets UNIX gets that socket, not "TLS and plaintext flags do not apply"."""
    from tests.support import dockerfile

    path = f"{tmp_path}/plugin.sock"
    image = dockerfile.environment()
    assert image["IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT"] == "true"
    # the image's health socket in a folder of this machine's (the image's /run/... is its own)
    health = f"{tmp_path}/health.sock"
    env = {
        **os.environ,
        **image,
        "IAM_CREATE_ACCESS_KEY_UNIX": path,
        "IAM_CREATE_ACCESS_KEY_HEALTH_SOCKET": health,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve"], cwd=ROOT, env=env, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert f"serving integration_pack.Plugin on unix:{path} (unix socket" in line, line
        completed = run_cli("health", env=env)  # the image's: on its health socket
        assert (completed.returncode, completed.stdout) == (0, f"unix:{health}: SERVING\n")
        completed = run_cli("health", "--unix", path, env={**env, **{HEALTH_SOCKET: ""}})
        assert (completed.returncode, completed.stdout) == (0, f"unix:{path}: SERVING\n")
    finally:
        process.terminate()
        process.wait(30)
    assert "plaintext" not in process.stderr.read()  # no warning: nothing was opened
    # typed together on one command line, the two still contradict each other
    typed = run_cli("serve", "--unix", path, "--insecure-plaintext", env=env, timeout=30)
    assert typed.returncode == 2
    assert typed.stderr == (
        "iam-create-access-key: error: --unix listens on a local socket: TLS and plaintext "
        "flags do not apply\n"
    )


ROLES = "arn:aws:iam::123456789012:role/deploy,ci", "arn:aws:iam::123456789012:role/ops+x=y@z"
ROLE = "arn:aws:iam::123456789012:role"


def test_a_list_variable_means_what_repeating_the_flag_means() -> None:
    by_flags = resolve({"allow_role_arn": list(ROLES), "lend_identity": "assume-role"}, {})
    by_variable = resolve(
        {},
        {
            "IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN": f"\n  {ROLES[0]}\n\t{ROLES[1]}  \n",
            "IAM_CREATE_ACCESS_KEY_LEND_IDENTITY": "assume-role",
        },
    )
    assert by_flags == by_variable
    assert Policy.from_settings(by_variable).allow_role_arns == ROLES  # the comma is the name's


def test_a_role_name_with_a_comma_admits_that_role_only(iam: LocalIAM) -> None:
    """role/deploy,ci admits role/deploy,ci, never role/deploy (which a comma list did)."""
    deploy = "arn:aws:iam::123456789012:role/deploy"
    process = PluginProcess(
        env={
            **ambient(iam),
            "IAM_CREATE_ACCESS_KEY_LEND_IDENTITY": "assume-role",
            "IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN": f"{deploy},ci\n{ROLES[1]}",
        }
    )
    try:
        user = iam.new_user()
        mark = iam.mark()
        refused = create(process.stub(), user, {"role_arn": deploy})
        assert refused.error_code == 3
        assert f"{deploy} is not a role this server assumes" in refused.error_message
        assert "AssumeRole" not in iam.actions()[mark:]
        allowed = create(process.stub(), user, {"role_arn": f"{deploy},ci"})
        assert "Refused by this server" not in allowed.error_message
        assert "AssumeRole" in iam.actions()[mark:]
    finally:
        process.stop()


def test_a_blank_variable_means_unset() -> None:
    blank = {setting.variable: " " for setting in SETTINGS}
    assert resolve({}, blank) == resolve({}, {})


@pytest.mark.parametrize(
    ("arguments", "env", "expected"),
    [
        ((), {"IAM_CREATE_ACCESS_KEY_MAX_CALL_SECONDS": "nan"},
         "IAM_CREATE_ACCESS_KEY_MAX_CALL_SECONDS='nan' is not a finite number"),
        (("--grace", "nan"), {}, "--grace='nan' is not a finite number"),
        ((), {"IAM_CREATE_ACCESS_KEY_GRACE": "inf"},
         "IAM_CREATE_ACCESS_KEY_GRACE='inf' is not a finite number"),
        ((), {"IAM_CREATE_ACCESS_KEY_PORT": "70000"},
         "IAM_CREATE_ACCESS_KEY_PORT='70000' is not from 0 to 65535"),
        (("--metrics-port", "65536"), {}, "--metrics-port='65536' is not from 0 to 65535"),
        (("--max-calls", "0"), {}, "--max-calls='0' is not from 1 to 1024"),
        (("--max-calls", "1_000"), {},
         "--max-calls='1_000' is not a whole number (decimal digits only)"),
        ((), {"IAM_CREATE_ACCESS_KEY_MAX_CALLS": "1_000"},
         "IAM_CREATE_ACCESS_KEY_MAX_CALLS='1_000' is not a whole number (decimal digits only)"),
        ((), {"IAM_CREATE_ACCESS_KEY_MAX_CALLS": "100000000"},
         "IAM_CREATE_ACCESS_KEY_MAX_CALLS='100000000' is not from 1 to 1024"),
        ((), {"IAM_CREATE_ACCESS_KEY_GRACE": "1e308"},
         "IAM_CREATE_ACCESS_KEY_GRACE='1e308' is not a number in decimal digits (such as 60 or "
         "2.5)"),
        (("--grace", "86401"), {}, "--grace='86401' is not from 0 to 86400"),
        (("--max-bytes-in-flight", "0"), {},
         "--max-bytes-in-flight='0' is not from 1 to 1073741824"),
        ((), {"IAM_CREATE_ACCESS_KEY_MAX_ANSWER_BYTES": "1"},
         "IAM_CREATE_ACCESS_KEY_MAX_ANSWER_BYTES='1' is not from 262144 to 5242880"),
        (("--grace", "0", "--max-call-seconds", "86400.5"), {},
         "--max-call-seconds='86400.5' is not more than 0 and at most 86400"),
        ((), {"IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN": f"{ROLE}/a, {ROLE}/b"},
         f"IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN='{ROLE}/a,' ends in a comma: a list's items are "
         "separated by whitespace, not commas"),
        ((), {"IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN": "not-an-arn"},
         "IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN='not-an-arn' is not a role ARN pattern "
         "(arn:PARTITION:iam::ACCOUNT-or-*:role/NAME, * allowed in NAME)"),
        (("--allow-role-arn", "arn:aws:iam::*:user/ci"), {},
         "--allow-role-arn='arn:aws:iam::*:user/ci' is not a role ARN pattern "
         "(arn:PARTITION:iam::ACCOUNT-or-*:role/NAME, * allowed in NAME)"),
        (("--host", " "), {}, "--host is blank"),
        (("--allow-endpoint", ""), {},
         "--allow-endpoint='': an item is one word, neither blank nor spaced"),
        (("--lend-identity", "everyone"), {}, "--lend-identity='everyone': one of none, assume-role, all"),
        (("--max-call-seconds", "120"), {},
         "--max-call-seconds (120) is longer than --grace (60): a call could outlive the drain "
         "at SIGTERM; lower it, or raise --grace"),
    ],
    ids=["nan-variable", "nan-flag", "inf", "port", "metrics-port", "max-calls", "underscore-flag",
         "underscore-variable", "max-calls-too-many", "exponent", "grace-over-a-day",
         "bytes-in-all-their-digits", "answer-bytes-in-all-their-digits",
         "max-call-seconds-over-a-day", "roles-with-commas", "role-not-an-arn", "user-not-role",
         "blank-flag", "blank-item", "choice-flag", "longer-than-grace"],
)  # fmt: skip
def test_flags_and_variables_out_of_range_stop_it_in_one_line(
    arguments: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    completed = run_cli("serve", *arguments, env={**os.environ, **env}, timeout=30)
    assert completed.returncode == 2
    assert completed.stderr == f"iam-create-access-key: error: {expected}\n"


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:iam::123456789012:role/deploy",
        "arn:aws:iam::*:role/keymaker-*",
        "arn:aws-us-gov:iam::123456789012:role/team/ci/*",
        "arn:aws-cn:iam::123456789012:role/deploy,ci",
    ],
)
def test_role_arn_patterns_an_operator_writes_are_read_as_written(pattern: str) -> None:
    env = {"IAM_CREATE_ACCESS_KEY_ALLOW_ROLE_ARN": pattern}
    assert resolve({}, env)["allow_role_arn"] == [pattern]


def test_every_seconds_setting_is_bounded_and_the_whole_stop_fits_a_timer() -> None:
    from plugin.hosts.serve.server import EXIT_LISTING_SECONDS, EXIT_MARGIN_SECONDS

    seconds = [setting for setting in SETTINGS if setting.metavar == "SECONDS"]
    assert {setting.name for setting in seconds} >= {"grace", "max_call_seconds"}
    for setting in seconds:
        assert setting.most is not None, setting.name
        assert setting.most <= settings.MOST_SECONDS == 86400, setting.name
    # what a stop can add up to: every delay at its most, then the exit's own seconds
    longest_stop = sum(s.most or 0 for s in seconds) + EXIT_MARGIN_SECONDS + EXIT_LISTING_SECONDS
    assert longest_stop < threading.TIMEOUT_MAX


def test_the_longest_grace_serves_and_stops_without_a_traceback() -> None:
    """GRACE=1e308 started, then grpc's stop(grace) raised OverflowError at SIGTERM; the
    longest grace the grammar now admits is one its timers take."""
    most = f"{settings.MOST_SECONDS:g}"
    process = PluginProcess(env={"IAM_CREATE_ACCESS_KEY_GRACE": most})
    try:
        assert process.terminate() == 0
        text = process.text()
        assert f"(at most {most} s)" in text
        assert "Traceback" not in text
        assert "OverflowError" not in text
    finally:
        process.stop()


def test_max_call_seconds_follows_the_grace_unless_given() -> None:
    assert resolve({}, {})["max_call_seconds"] == 60
    assert resolve({"grace": "20"}, {})["max_call_seconds"] == 20
    assert resolve({"grace": "20", "max_call_seconds": "15"}, {})["max_call_seconds"] == 15
    with pytest.raises(SettingError):
        resolve({"grace": "20", "max_call_seconds": "25"}, {})


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu.max": "250000 100000\n"}, 2.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
    ids=["v2-half", "v2-two-and-a-half", "v2-unlimited", "v1", "v1-unlimited", "none"],
)
def test_the_pods_cpu_limit_is_read_from_its_cgroup(
    tmp_path: Path, files: dict[str, str], expected: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert settings.cgroup_cpu_limit(tmp_path) == expected
    node = len(os.sched_getaffinity(0))
    assert settings.available_cpus(tmp_path) == (node if expected is None else min(node, expected))


def test_max_calls_follows_the_pods_processors_not_the_nodes() -> None:
    # a 500m pod on a 16-core node: 32 (the node's count gave 64)
    assert settings.default_max_calls(min(16, 0.5)) == 32
    assert settings.default_max_calls(3) == 48
    assert settings.default_max_calls(16) == 64


@pytest.mark.parametrize("command", ["serve", "health", "describe"])
def test_debug_shows_the_traceback_of_an_internal_error(command: str) -> None:
    probe = (
        "import sys\n"
        "import plugin.contract.manifest, plugin.hosts.serve.server, plugin.hosts.serve.health_check\n"
        "def broken(*args, **kwargs):\n"
        "    raise ZeroDivisionError('the bug itself')\n"
        "plugin.contract.manifest.describe = plugin.hosts.serve.server.serve = broken\n"
        "plugin.hosts.serve.health_check.check = broken\n"
        "from plugin.hosts.cli import main\n"
        f"sys.exit(main(['{command}', '--debug']))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 1
    assert "Traceback (most recent call last)" in completed.stderr
    assert "ZeroDivisionError: the bug itself" in completed.stderr
    assert completed.stderr.endswith(
        "iam-create-access-key: error: internal error (run with --debug for details)\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", probe.replace(", '--debug'", "")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert quiet.stderr == (
        "iam-create-access-key: error: internal error (run with --debug for details)\n"
    )


@pytest.mark.parametrize("plaintext", [None, "false"], ids=["line-dropped", "set-false"])
def test_the_readmes_mutual_tls_recipe_with_the_images_environment(
    tmp_path: Path, plaintext: str | None
) -> None:
    from tests.support import dockerfile
    from tests.support.pki import RUNNER_DNS, make_pki

    pki = make_pki(tmp_path)
    recipe = {
        "IAM_CREATE_ACCESS_KEY_TLS_CERT": pki["server"][3],
        "IAM_CREATE_ACCESS_KEY_TLS_KEY": pki["server"][2],
        "IAM_CREATE_ACCESS_KEY_TLS_CLIENT_CA": pki["ca"][3],
        "IAM_CREATE_ACCESS_KEY_TLS_CLIENT_NAME": RUNNER_DNS,
        "IAM_CREATE_ACCESS_KEY_PORT": str(free_port()),
        HEALTH_SOCKET: str(tmp_path / "health.sock"),  # the image's /run/... is its own
    }
    if plaintext is not None:
        recipe["IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT"] = plaintext
    env = {**os.environ, **dockerfile.environment(), **recipe}
    if plaintext is None:  # the old recipe: the image's ENV still says true
        completed = run_cli("serve", env=env, timeout=30)
        assert completed.returncode == 2
        assert "--insecure-plaintext contradicts --tls-cert/--tls-key" in completed.stderr
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "serve"], cwd=ROOT, env=env, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        assert "(mutual TLS" in process.stderr.readline()
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("other", ["--health-port", "--metrics-port"])
def test_a_port_given_to_two_of_its_own_listeners_is_said_so(other: str) -> None:
    """Not "another process listens on it": the other listener is serve's own."""
    port = str(free_port())
    completed = run_cli("serve", "--port", port, other, port, env=dict(os.environ), timeout=30)
    assert completed.returncode == 2
    assert completed.stderr == (
        f"iam-create-access-key: error: {other} {port} is --port's too: each of serve's "
        "listeners needs a port of its own\n"
    )
