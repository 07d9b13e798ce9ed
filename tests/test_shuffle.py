"""The action as a Shuffle app, built and run as Shuffle builds and runs it, with Shuffle's own
SDK (no mock of it), against moto.

Built as Shuffle builds it: the app folder alone (copied away from the checkout), its
requirements installed in a fresh virtual environment as its Dockerfile installs them (pip's
hash-checking mode, the lock only), nothing of the checkout on the path: the action's code comes
from the zip in src/ (what Shuffle's cloud build also keeps: flat files in src/).

Run as Shuffle runs it: the environment of Shuffle's worker (functions/onprem/worker/worker.go:
EXECUTIONID, AUTHORIZATION, CALLBACK_URL, BASE_URL, TZ, SHUFFLE_LOGS_DISABLED, ACTION,
SHUFFLE_APP_SDK_TIMEOUT), the image's ENV (read from the app's Dockerfile) and what a Helm chart's
extraEnvVars would add (the endpoint), nothing else; authentication passed as the backend passes
it (action arguments; a single space for a field left empty, as Shuffle's form demands)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyrage
import pytest
import yaml
from packaging.requirements import Requirement

from plugin.contract import manifest, resources
from plugin.contract.errors import ActionError
from plugin.hosts.operator.settings import SettingError, resolve
from plugin.hosts.shuffle import app, folder
from plugin.hosts.shuffle.settings import AUTHENTICATION, OPERATOR_PARAMETERS, Settings
from tests.support import fault_proxy as faults
from tests.support.fault_proxy import FaultProxy
from tests.support.local_iam import ADMIN_KEY_ID, ADMIN_SECRET, LocalIAM
from tests.support.ports import free_port
from tests.support.shuffle_app import (
    APP,
    BuiltApp,
    authentication,
    built,
    chart,
    image_env,
    standalone,
    worker_env,
)
from tests.support.shuffle_backend import ShuffleBackend, action

__all__ = ["built"]  # the Shuffle app as its Dockerfile builds it (a fixture)

pytestmark = pytest.mark.slow


def stitch(source: Path, target: Path) -> None:
    """What shuffle-shared app_upload/stitcher.go makes of an app folder for Shuffle's cloud:
    main.py from src/app.py (lines naming walkoff_app_sdk dropped, cut at `if __name__ ==`;
    Shuffle prepends its SDK's AppBase, which app.py imports), requirements.txt, and the flat
    files of src/ beside them (subfolders skipped)."""
    target.mkdir()
    kept = []
    for line in (source / "src" / "app.py").read_text().split("\n"):
        if "walkoff_app_sdk" in line or ("console_logger" in line and "await" in line):
            continue
        if "if __name__ ==" in line:
            break
        kept.append(line)
    (target / "main.py").write_text("\n".join(kept))
    shutil.copy(source / "requirements.txt", target / "requirements.txt")
    for path in (source / "src").iterdir():
        if path.is_file() and path.name != "app.py":
            shutil.copy(path, target / path.name)


@pytest.fixture(scope="module")
def stitched(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """The app as Shuffle's cloud build lays it out, its requirements.txt installed alone."""
    root = tmp_path_factory.mktemp("shuffle-cloud")
    stitch(APP, root / "function")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", "requirements.txt"],
        check=True,
        capture_output=True,
        cwd=root / "function",
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=900,
    )
    (root / "home").mkdir()
    return BuiltApp(python, root / "function", root / "home")


@pytest.fixture
def backend() -> Iterator[ShuffleBackend]:
    stand_in = ShuffleBackend()
    yield stand_in
    stand_in.stop()


def run_production(
    built: BuiltApp, backend: ShuffleBackend, given: dict[str, str], **env: str
) -> str:
    """As Shuffle's worker starts an app: the action and execution in its environment."""
    completed = subprocess.run(
        [str(built.python), "app.py"],
        cwd=built.src,
        env=worker_env(
            built,
            ACTION=json.dumps(action(given)),
            AUTHORIZATION="workflow-authorization",
            EXECUTIONID="execution-1",
            BASE_URL=backend.url,
            CALLBACK_URL=backend.url,
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def posted_log(posted: dict[str, Any]) -> str:
    (logs,) = [p["value"] for p in posted["action"]["parameters"]
               if p["name"] == "shuffle_action_logs"]  # fmt: skip
    return str(logs)


# ---- the app folder, generated ---------------------------------------------------------------


def test_the_app_folder_is_this_checkout_regenerated() -> None:
    for relative, content in folder.generated().items():
        assert (APP / relative).read_bytes() == content, f"{relative}: run make shuffle-app"
    assert sorted(p.name for p in (APP / "src").iterdir()) == [
        "app.py",
        "iam_create_access_key.zip",
    ]
    # Shuffle's backend reads the folder's README.md into the app's documentation (walkoff.go)
    readme = (APP / "README.md").read_text()
    assert "| `access_key_id` | yes | Access key ID of the AWS identity" in readme
    assert "| `IAM_CREATE_ACCESS_KEY_LEND_IDENTITY` | `none` |" in readme  # operator settings
    assert "**What the result holds**" in readme
    assert "](#" not in readme  # links lead back to the project's README


def test_every_requirement_is_pinned_with_hashes_and_fits_the_project() -> None:
    lock = (APP / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([\w.-]+)==(\S+) \\$", lock, re.MULTILINE))
    entries = re.split(r"\n(?=[\w.-]+==)", lock.split("\n\n")[-1].strip())
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)
    wanted = (APP / "requirements.in").read_text().splitlines()[1:]
    for line in wanted:
        requirement = Requirement(line)
        version = pins[requirement.name.lower().replace("_", "-")]
        assert requirement.specifier.contains(version), line
    assert pins["shuffle-sdk"] == "0.0.41"
    assert "pyrage" in pins  # Seal Secret To works in the image
    assert "iam-create-access-key" not in lock  # a name no index serves: never requested


def test_the_vendored_zip_holds_the_package_with_its_manifest_and_schemas() -> None:
    with zipfile.ZipFile(APP / "src" / "iam_create_access_key.zip") as archive:
        names = set(archive.namelist())
    assert {"plugin/__init__.py", "plugin/hosts/shuffle/app.py", "plugin/action.yaml",
            "plugin/schemas/connection.schema.json"} <= names  # fmt: skip
    digest = hashlib.sha256((APP / "src" / "iam_create_access_key.zip").read_bytes()).hexdigest()
    assert f'VENDORED_SHA256 = "{digest}"' in (APP / "src" / "app.py").read_text()


def test_the_dockerfile_installs_the_lock_by_hash_and_lints_clean() -> None:
    """The fixture below builds as this Dockerfile does: the lock, hash-checked; then src/."""
    recipe = (APP / "Dockerfile").read_text()
    assert "FROM frikky/shuffle:app_sdk AS base" in recipe
    assert "pip install --no-cache-dir --require-hashes -r /build-requirements.txt" in recipe
    assert "--require-hashes --no-build-isolation \\\n    -r /requirements.txt" in recipe
    assert "COPY src /app" in recipe
    hadolint = Path(sys.executable).parent / "hadolint"
    linted = subprocess.run([str(hadolint), str(APP / "Dockerfile")], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert linted.returncode == 0, linted.stdout


def test_a_package_built_from_its_sdist_uses_only_the_hashed_backend(
    tmp_path: Path,
) -> None:
    """markupsafe 3.0.2 has no wheel for app_sdk's Python 3.14 on Alpine, so the image builds it
    from its sdist: built the Dockerfile's way (the build lock first, then --no-build-isolation),
    pip fetches no build dependency; the sdist's hash is in the lock, and its backend in the
    build lock."""
    build_lock = (APP / "build-requirements.txt").read_text()
    entries = [e for e in re.split(r"\n(?=[\w.-]+==)", build_lock) if "==" in e]
    assert {e.split("==")[0] for e in entries} == {"maturin", "setuptools"}
    assert all("--hash=sha256:" in e for e in entries)
    (entry,) = re.findall(r"^markupsafe==.*?(?=^\S)", (APP / "requirements.txt").read_text(),
                          re.MULTILINE | re.DOTALL)  # fmt: skip
    (tmp_path / "one.txt").write_text(re.sub(r"\s*# via.*", "", entry) + "\n")
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [python, "-m", "pip", "install", "--no-cache-dir", "--require-hashes"]
    subprocess.run([*pip, "-q", "-r", str(APP / "build-requirements.txt")], check=True,
                   capture_output=True, env=env, timeout=600)  # fmt: skip
    built = subprocess.run(
        [*pip, "--no-build-isolation", "--no-binary", "markupsafe", "-r", str(tmp_path / "one.txt")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert "markupsafe-3.0.2.tar.gz" in built.stdout  # built from the sdist, checked by hash
    assert "Installing build dependencies" not in built.stdout  # nothing fetched to build it


# ---- api.yaml, for Shuffle's editor ----------------------------------------------------------


def test_api_yaml_asks_for_authentication_shuffle_passes_to_the_app() -> None:
    document = yaml.safe_load((APP / "api.yaml").read_text())
    assert document["name"] == "AWS IAM Create Access Key"
    assert document["app_version"] == resources.manifest()["version"]
    # Shuffle keeps name and url only (shuffle-shared structs.go, WorkflowApp.ContactInfo)
    assert document["contact_info"] == {
        "name": "iam-create-access-key maintainers",
        "url": "README.md#run-it-in-shuffle",
    }
    assert "### Run it in Shuffle\n" in (folder.ROOT / "README.md").read_text()
    assert document["authentication"]["required"] is True
    fields = {p["name"]: p for p in document["authentication"]["parameters"]}
    assert tuple(fields) == AUTHENTICATION == ("access_key_id", "secret_access_key",
                                               "session_token", "region")  # fmt: skip
    assert [n for n, f in fields.items() if f["required"]] == ["access_key_id", "secret_access_key"]
    assert all(len(f["description"]) <= 80 and "format" not in f["schema"] for f in fields.values())
    assert fields["secret_access_key"]["example"] == "*****"
    assert fields["session_token"]["example"] == " "  # shown as a value: "none"
    icon = document["large_image"]
    assert icon.startswith("data:image/png;base64,")
    assert base64.b64decode(icon.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


def test_api_yaml_offers_every_parameter_in_the_editors_order_with_one_line_each() -> None:
    document = yaml.safe_load((APP / "api.yaml").read_text())
    (only,) = document["actions"]
    assert only["name"] == "create_access_key"
    parameters = {p["name"]: p for p in only["parameters"]}
    offered = [p["name"] for p in manifest.parameters() if p["name"] not in OPERATOR_PARAMETERS]
    assert sorted(parameters) == sorted(offered)
    assert list(parameters)[:4] == ["user_name", "regions", "seal_secret_to", "vault"]
    assert all(len(p["description"]) <= 130 for p in parameters.values())
    assert parameters["status"]["options"] == ["Active", "Inactive"]
    assert parameters["disable_xml_to_json"]["options"] == ["false", "true"]
    assert json.loads(only["returns"]["example"])["success"] is True


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("", 30), ("45", 45), ("45.5", 30), (" 45 ", 45), ("x", 30), ("1_0", 10)],
    ids=["unset", "45", "45.5", "spaces", "text", "underscore"],
)
def test_the_sdks_timeout_is_read_as_the_sdk_reads_it(given: str, seconds: int) -> None:
    """shuffle_sdk.py: int(SHUFFLE_APP_SDK_TIMEOUT) if not empty, 30 if that fails."""
    assert app.sdk_timeout({"SHUFFLE_APP_SDK_TIMEOUT": given}) == seconds
    assert app.action_deadline({"SHUFFLE_APP_SDK_TIMEOUT": given}) == seconds - 3
    assert app.action_deadline({"SHUFFLE_APP_SDK_TIMEOUT": "4"}) == 2  # half, below 6


def too_little(timeout: str) -> str:
    return (
        f"SHUFFLE_APP_SDK_TIMEOUT is {timeout}: Shuffle's SDK gives this step too little time, so "
        "the app does not start it; Shuffle's administrator sets it to a number of seconds (30 "
        "when unset) on Orborus (nothing was sent to AWS)"
    )


NO_TIME = {
    "0": (too_little("0"), 3),
    "-5": (too_little("-5"), 3),
    "3": (too_little("3"), 3),  # half of it (1.5 s) is less than a call is started with
    "12": (
        "No time left for this call: Shuffle's SDK gives the whole step, every item of a loop "
        "together, 12 seconds (SHUFFLE_APP_SDK_TIMEOUT) and this item came too late in it; loop "
        "over fewer items per step, or have Shuffle's administrator raise "
        "SHUFFLE_APP_SDK_TIMEOUT on Orborus (nothing was sent to AWS)",
        4,
    ),
}


@pytest.mark.parametrize(
    ("timeout", "elapsed"),
    [("0", 0.0), ("-5", 0.0), ("3", 0.0), ("12", 7.5)],
    ids=["zero", "negative", "three", "late"],
)
def test_a_call_the_sdks_time_does_not_cover_sends_nothing(
    timeout: str, elapsed: float, iam: LocalIAM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK gives up at once with a timeout of 0 or less (future.result(0)); in a loop it
    gives every item together one timeout from the run's start. A call with (almost) nothing of
    it left is refused before anything reaches IAM, where it would make a key nobody receives."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", iam.url)  # where a call would go
    user = iam.new_user()
    mark = iam.mark()
    fields = {**authentication(), "user_name": user}
    environ = {**image_env(), "SHUFFLE_APP_SDK_TIMEOUT": timeout}
    answer = app.create_access_key(fields, environ, time.time() - elapsed)
    reason, code = NO_TIME[timeout]
    assert answer == {"success": False, "reason": reason, "error_code": code}
    assert iam.since(mark) == []
    assert iam.key_ids(user) == []


@pytest.mark.parametrize(
    ("said", "read"),
    [
        ("connection.region: must match ^[a-z0-9-]+$",
         "authentication.region: must match ^[a-z0-9-]+$"),
        ('CreateAccessKey failed for user "bob": internal error KeyError (run with --debug for '
         "details)",
         'CreateAccessKey failed for user "bob": internal error KeyError (the app\'s log has the '
         "details when its DEBUG variable is true)"),
    ],
    ids=["field", "details"],
)  # fmt: skip
def test_the_actions_messages_are_said_in_shuffles_words(said: str, read: str) -> None:
    assert app.in_shuffle_words(said) == read


def test_an_expiry_without_the_operators_role_is_refused_in_shuffles_words() -> None:
    """Once the manifest has Expires After (issue 23), a call asking for it on this door needs
    the operator's role; the request is stood in for (this checkout's may lack the fields)."""
    request = SimpleNamespace(
        parameters=SimpleNamespace(expires_after="1h", expiry_role_arn=None, vault=None),
        connection=SimpleNamespace(access_key_id=ADMIN_KEY_ID),
    )
    with pytest.raises(ActionError) as refused:
        Settings.from_environment({}).admit(request)  # type: ignore[arg-type]
    assert refused.value.error_code == 2
    assert str(refused.value).endswith(
        "needs the app's setting IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN, which is not set: its "
        "administrator sets it on the app's image (ENV) or in the Helm chart's extraEnvVars "
        "(nothing was sent)"
    )
    granted = SimpleNamespace(
        parameters=SimpleNamespace(expires_after="1h", expiry_role_arn="arn:aws:iam::1:role/x",
                                   vault=None),
        connection=request.connection,
    )  # fmt: skip
    Settings.from_environment({}).admit(granted)  # type: ignore[arg-type]


_WHERE = "(on the app's image (ENV) or in the Helm chart's extraEnvVars); nothing was sent to AWS"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("IAM_CREATE_ACCESS_KEY_VAULT_PREFIX", "/team/,/ops/",
         "The app's setting IAM_CREATE_ACCESS_KEY_VAULT_PREFIX='/team/,/ops/' is not a vault name "
         f"prefix: vault names hold no commas, so separate prefixes with spaces {_WHERE}"),
        ("IAM_CREATE_ACCESS_KEY_LEND_IDENTITY", "ALL",
         f"The app's setting IAM_CREATE_ACCESS_KEY_LEND_IDENTITY is 'ALL'; it must be none or all "
         f"{_WHERE}"),
    ],
    ids=["comma-list", "capitals"],
)  # fmt: skip
def test_the_apps_settings_mean_what_serves_do_and_a_value_serve_refuses_is_refused(
    variable: str, value: str, reason: str, iam: LocalIAM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app reads serve's variables by serve's table: a comma list of prefixes (read as a
    list by the app once) and a choice in capitals are refused by both, nothing sent."""
    user = iam.new_user()
    mark = iam.mark()
    monkeypatch.setenv("AWS_ENDPOINT_URL", iam.url)

    result = app.create_access_key({**authentication(), "user_name": user}, {variable: value})

    assert result == {"success": False, "reason": reason, "error_code": 2}
    assert iam.since(mark) == []
    with pytest.raises(SettingError, match=f"^{variable}="):
        resolve({}, {variable: value})


def test_vault_prefixes_are_separated_by_spaces_as_on_serve(
    iam: LocalIAM, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = iam.new_user()
    mark = iam.mark()
    monkeypatch.setenv("AWS_ENDPOINT_URL", iam.url)
    environ = {"IAM_CREATE_ACCESS_KEY_VAULT_PREFIX": " /team/\n/ops/ "}
    given = {**authentication(), "user_name": user, "vault": "ssm:/prod/db"}

    result = app.create_access_key(given, environ)

    assert result == {
        "success": False,
        "reason": "vault: ssm:/prod/db is outside the names this app writes (/team/, /ops/: "
        "IAM_CREATE_ACCESS_KEY_VAULT_PREFIX) (nothing was sent)",
        "error_code": 3,
    }
    assert iam.since(mark) == []


# ---- the image, as built ---------------------------------------------------------------------


def test_the_image_has_no_action_package_but_the_vendored_one(built: BuiltApp) -> None:
    probe = "import importlib.util as u; print(u.find_spec('plugin'))"
    alone = subprocess.run([str(built.python), "-c", probe], cwd=built.home,
                           env=worker_env(built), capture_output=True, text=True, check=True)  # fmt: skip
    assert alone.stdout.strip() == "None"  # nothing named plugin was installed from an index
    loaded = subprocess.run(
        [str(built.python), "-c", "import app, plugin; print(plugin.__file__)"],
        cwd=built.src, env=worker_env(built), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert loaded.stdout.strip() == str(built.src / "iam_create_access_key.zip/plugin/__init__.py")


def test_the_cloud_builds_layout_creates_a_key(
    stitched: BuiltApp, iam: LocalIAM, proxy: FaultProxy
) -> None:
    """main.py (stitched) beside the zip, with requirements.txt's packages only: the SDK's
    standalone run of the stitched class creates one key."""
    user = iam.new_user()
    arguments = ["--standalone", "--action=create_access_key", f"--user_name={user}",
                 *[f"--{k}={v}" for k, v in authentication().items()]]  # fmt: skip
    run = f"import sys; sys.argv[1:] = {arguments!r}; import main; main.{folder.CLASS}.run()"
    completed = subprocess.run(
        [str(stitched.python), "-c", run],
        cwd=stitched.src,
        env=worker_env(stitched, **chart(proxy)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(completed.stdout.split("=====\n", 1)[1])
    assert result["success"] is True, result
    assert iam.key_ids(user) == [result["AccessKey"]["AccessKeyId"]]


def test_a_vendored_zip_that_is_not_the_generated_one_is_never_imported(
    built: BuiltApp, tmp_path: Path
) -> None:
    src = tmp_path / "app"
    shutil.copytree(built.src, src)
    archive = src / "iam_create_access_key.zip"
    archive.write_bytes(archive.read_bytes().replace(b"Creates a new AWS", b"Creates a bad AWS"))
    loaded = subprocess.run([str(built.python), "-c", "import app"], cwd=src,
                            env=worker_env(built), capture_output=True, text=True, check=False)  # fmt: skip
    assert loaded.returncode == 1
    assert f"ImportError: {archive} is not the code this app was generated with" in loaded.stderr


# ---- the three ways the SDK runs an app ------------------------------------------------------


def test_standalone_with_spaces_for_empty_fields_creates_one_key(
    built: BuiltApp, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    mark = proxy.mark()
    given = {**authentication(region=" "), "user_name": user, "regions": "us-east-1"}
    expiry = {"IAM_CREATE_ACCESS_KEY_EXPIRY_ROLE_ARN": "arn:aws:iam::123456789012:role/expiry"}
    result, output = standalone(built, given, **chart(proxy), **expiry)  # no expiry asked: unused

    assert result["success"] is True, result
    key = result["AccessKey"]
    assert (key["UserName"], key["Status"]) == (user, "Active")
    assert iam.key_ids(user) == [key["AccessKeyId"]]
    assert proxy.issued_secrets(mark) == [key["SecretAccessKey"]]
    assert output.count(key["SecretAccessKey"]) == 1  # in the printed result only
    assert ADMIN_SECRET not in output


def test_standalone_failures_speak_of_the_apps_fields(
    built: BuiltApp, iam: LocalIAM, proxy: FaultProxy
) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    given = {**authentication(), "user_name": ghost, "wait_for_user": "0"}
    result, _ = standalone(built, given, **chart(proxy))
    assert result == {"success": False, "reason": result["reason"], "error_code": 3}
    assert result["reason"].startswith(f'CreateAccessKey failed for user "{ghost}": NoSuchEntity')
    mark = iam.mark()
    bad, _ = standalone(
        built, {**authentication(region="not a region"), "user_name": "not valid!", "statuss": "x"},
        **chart(proxy),
    )  # fmt: skip
    assert bad["error_code"] == 2
    assert "parameters.statuss: unknown field" in bad["reason"]
    assert "parameters.user_name: must match" in bad["reason"]
    assert "authentication.region: must match" in bad["reason"]
    assert "connection" not in bad["reason"]
    assert iam.since(mark) == []


def test_production_path_with_debug_logs_keeps_every_secret_out_of_every_line(
    built: BuiltApp, backend: ShuffleBackend, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    mark = proxy.mark()
    debug = {"DEBUG": "true", **chart(proxy)}  # DEBUG: the image's ENV or extraEnvVars
    outputs = run_production(built, backend, {**authentication(), "user_name": user}, **debug)
    outputs += run_production(
        built, backend, {**authentication(), "user_name": ghost, "wait_for_user": "0"}, **debug
    )

    assert "[DEBUG] Param:" in outputs  # the SDK logged every argument ...
    assert "'secret_access_key': '***'" in outputs  # ... with the secret masked
    succeeded, failed = backend.received()
    assert (succeeded["status"], succeeded["execution_id"]) == ("SUCCESS", "execution-1")
    key = json.loads(succeeded["result"])["AccessKey"]
    assert iam.key_ids(user) == [key["AccessKeyId"]]
    (secret,) = proxy.issued_secrets(mark)
    assert key["SecretAccessKey"] == secret
    failure = json.loads(failed["result"])
    assert (failure["success"], failure["error_code"]) == (False, 3)
    assert "NoSuchEntity" in failure["reason"]
    for posted in (succeeded, failed):
        logs = posted_log(posted)
        assert "create_access_key" in logs  # the SDK's captured log is there ...
        assert secret not in logs  # ... without the new secret
        assert ADMIN_SECRET not in logs  # ... nor the authentication's
    assert secret not in outputs
    assert ADMIN_SECRET not in outputs


def test_an_unresolved_reference_is_refused_with_its_cause(
    built: BuiltApp, backend: ShuffleBackend, iam: LocalIAM, proxy: FaultProxy
) -> None:
    """user_name is `$create_user.User.UserName`, and the execution has no such result: the SDK
    adds shuffle_variable_error; the step says so, and nothing reaches IAM (no key for the
    identity that signs)."""
    mark = iam.mark()
    given = {**authentication(), "user_name": "$create_user.User.UserName"}
    run_production(built, backend, given, **chart(proxy))
    (posted,) = backend.received()
    assert json.loads(posted["result"]) == {
        "success": False,
        "reason": "Failed finding 'create_user . User . UserName': a $ reference in this step's "
        "arguments found no value in the execution; fix the reference (nothing was sent to AWS)",
        "error_code": 2,
    }
    assert iam.since(mark) == []


def test_microservice_mode_runs_the_action_posted_to_it(
    built: BuiltApp, backend: ShuffleBackend, iam: LocalIAM, proxy: FaultProxy
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(built.python), "app.py"],
        cwd=built.src,
        env=worker_env(
            built, SHUFFLE_SWARM_CONFIG="run", SHUFFLE_APP_EXPOSED_PORT=str(port), **chart(proxy)
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app's webserver never answered"
                time.sleep(0.2)
        user = iam.new_user()
        run = {
            "action": action({**authentication(), "user_name": user}),
            "authorization": "workflow-authorization",
            "execution_id": "execution-2",
            "url": backend.url,
            "base_url": backend.url,
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/run",
            data=json.dumps(run).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (loopback)
            assert json.loads(answer.read())["success"] is True
        (posted,) = backend.received()
        key = json.loads(posted["result"])["AccessKey"]
        assert posted["execution_id"] == "execution-2"
        assert iam.key_ids(user) == [key["AccessKeyId"]]
    finally:
        server.terminate()
        server.wait(30)


# ---- custody under Shuffle's SDK -------------------------------------------------------------


def test_sealing_works_in_the_image(built: BuiltApp, iam: LocalIAM, proxy: FaultProxy) -> None:
    identity = pyrage.x25519.Identity.generate()
    user = iam.new_user()
    mark = proxy.mark()
    given = {**authentication(), "user_name": user, "seal_secret_to": str(identity.to_public())}
    result, output = standalone(built, given, **chart(proxy))
    assert result["success"] is True, result
    key = result["AccessKey"]
    assert "SecretAccessKey" not in key
    secret = proxy.issued_secret(mark)
    assert pyrage.decrypt(key["SealedSecretAccessKey"].encode(), [identity]).decode() == secret
    assert secret not in output


def test_a_timeout_the_sdk_cannot_read_leaves_no_key(
    built: BuiltApp, iam: LocalIAM, proxy: FaultProxy
) -> None:
    """SHUFFLE_APP_SDK_TIMEOUT=45.5: int() fails, so the SDK gives 30 s and then reports a
    failure while the call runs on. The action reads it the same way: its deadline (27 s) comes
    first; it answers, and the key IAM made behind the held answer is found and deleted."""
    user = iam.new_user()
    proxy.inject("CreateAccessKey", *[faults.hold_after_forward(40)] * 6)  # every attempt
    mark = proxy.mark()
    result, _ = standalone(
        built, {**authentication(), "user_name": user}, SHUFFLE_APP_SDK_TIMEOUT="45.5",
        **chart(proxy),
    )  # fmt: skip
    assert result["success"] is False
    assert result["error_code"] == 4
    assert "Timeout error" not in result["reason"]  # the action's answer, not the SDK's
    assert proxy.issued_secrets(mark)  # IAM did make a key ...
    assert iam.key_ids(user) == []  # ... and none is left


def test_an_answer_lost_after_iam_acted_leaves_exactly_the_delivered_key(
    built: BuiltApp, iam: LocalIAM, proxy: FaultProxy
) -> None:
    user = iam.new_user()
    proxy.inject("CreateAccessKey", faults.DROP_AFTER_FORWARD)
    mark = proxy.mark()
    result, _ = standalone(built, {**authentication(), "user_name": user}, **chart(proxy))
    assert result["success"] is True, result
    delivered = result["AccessKey"]
    issued = proxy.issued_secrets(mark)
    assert len(issued) == 2  # the lost one, then the one delivered
    assert issued[-1] == delivered["SecretAccessKey"]
    assert iam.key_ids(user) == [delivered["AccessKeyId"]]


def test_the_containers_own_identity_is_lent_to_nobody_by_default(
    built: BuiltApp, iam: LocalIAM
) -> None:
    user = iam.new_user()
    mark = iam.mark()
    ambient = {  # the container's own identity, as a chart could give it
        "AWS_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
        "AWS_ENDPOINT_URL": iam.url,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    spaces = authentication(access_key_id=" ", secret_access_key=" ", region=" ")
    result, _ = standalone(built, {**spaces, "user_name": user}, **ambient)
    assert result == {
        "success": False,
        "reason": "The app's authentication has no Access Key ID, and the app does not lend its "
        "own AWS identity: fill Access Key ID and Secret Access Key in the authentication (or "
        "its administrator sets IAM_CREATE_ACCESS_KEY_LEND_IDENTITY=all on the app's image "
        "(ENV) or in the Helm chart's extraEnvVars) (nothing was sent)",
        "error_code": 3,
    }
    assert iam.since(mark) == []
    lent, _ = standalone(
        built, {**spaces, "user_name": user}, **ambient, IAM_CREATE_ACCESS_KEY_LEND_IDENTITY="all"
    )
    assert lent["success"] is True, lent
    assert iam.key_ids(user) == [lent["AccessKey"]["AccessKeyId"]]
    wrong, _ = standalone(
        built, {**spaces, "user_name": user}, **ambient, IAM_CREATE_ACCESS_KEY_LEND_IDENTITY="yes"
    )
    assert wrong["error_code"] == 2
    assert wrong["reason"] == (
        "The app's setting IAM_CREATE_ACCESS_KEY_LEND_IDENTITY is 'yes'; it must be none or all "
        "(on the app's image (ENV) or in the Helm chart's extraEnvVars); nothing was sent to AWS"
    )


def test_a_loop_that_outlasts_the_sdks_timeout_leaves_no_key_nobody_receives(
    built: BuiltApp, iam: LocalIAM, proxy: FaultProxy
) -> None:
    """Five users through `$exec.users.#`, SHUFFLE_APP_SDK_TIMEOUT=12, each CreateAccessKey
    answered 2.6 s after IAM acted: the SDK runs the items one after another inside its one
    12 s wait (run_recursed_items). The items share the run's deadline, so the late ones refuse
    before sending; the loop ends in time, and every key IAM holds is one the step returned."""
    users = [iam.new_user() for _ in range(5)]
    stand_in = ShuffleBackend(execution_argument=json.dumps({"users": users}))
    try:
        proxy.inject("CreateAccessKey", *[faults.hold_after_forward(2.6)] * 15)
        mark = proxy.mark()
        given = {**authentication(), "user_name": "$exec.users.#"}
        run_production(built, stand_in, given, SHUFFLE_APP_SDK_TIMEOUT="12", **chart(proxy))
        (posted,) = stand_in.received()
    finally:
        stand_in.stop()
    results = json.loads(posted["result"])
    assert isinstance(results, list), results  # the loop's answers, not the SDK's timeout
    assert len(results) == len(users)
    delivered = {r["AccessKey"]["AccessKeyId"] for r in results if r.get("success")}
    assert {key for user in users for key in iam.key_ids(user)} == delivered
    assert results[-1] == {
        "success": False,
        "reason": NO_TIME["12"][0],
        "error_code": 4,
    }
    asked = [e.request_body.decode() for e in proxy.since(mark) if e.action == "CreateAccessKey"]
    assert not [body for body in asked if f"UserName={users[-1]}" in body]  # nothing sent
