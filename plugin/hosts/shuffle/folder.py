"""The Shuffle app's folder, generated (`make shuffle-app`): api.yaml from the manifest, the
action's code vendored as one zip in src/, and the app.py that loads it.

Why a zip in src/: Shuffle builds an app two ways, and both take the folder alone. On-prem, its
Dockerfile (`COPY src /app`); in Shuffle's cloud, shuffle-shared app_upload/stitcher.go, which
keeps requirements.txt and the *flat* files of src/ (it skips subfolders, and never reads a
Dockerfile or a wheels/ folder). The action is not on the package index, and a name that no
index serves today is one that anyone may register tomorrow: so no requirement names it. A
zip is one flat file, importable as it is (zipimport), and app.py checks its SHA-256 before
putting it on sys.path, so the image runs exactly the code this checkout vendored. Shuffle's
on-prem hot-load rebuilds an app only when api.yaml, src/app.py or the Dockerfile change:
app.py carries the digests of the zip and of requirements.txt, so new code or pins make a new
app.py.

The requirements: requirements.in (the project's, from its metadata) is pinned with hashes by
pip-compile into requirements.txt (`make shuffle-app`), the file both builds read: the
Dockerfile installs it with --require-hashes; the cloud stitcher (shuffle-shared
app_upload/stitcher.go, addRequirements) uses it as it is when it names "liquid" and
"requests" (liquidpy, requests: it does), so pip checks the hashes there too. See the README's
"Run it in Shuffle" for why the cloud path still cannot run the app.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from plugin.contract import manifest, resources

from . import icon
from .app import ACTION
from .settings import AUTHENTICATION, OPERATOR_PARAMETERS

ROOT = Path(__file__).resolve().parents[3]  # the checkout: this is plugin/hosts/shuffle/folder.py
APP = ROOT / "shuffle" / "iam-create-access-key" / "0.1.0"
VENDORED = "iam_create_access_key.zip"
# The app's name in Shuffle's style (Shuffle/python-apps: "AWS IAM", "AWS S3", ...), and its
# class name in app.py (the stitcher finds the class by its "(AppBase)").
NAME = "AWS IAM Create Access Key"
CLASS = "AWSIAMCreateAccessKey"
# Shuffle keeps a name and a url of contact_info, nothing else (shuffle-shared structs.go,
# WorkflowApp.ContactInfo: Name, Url); the url is the app's documentation in this repository.
CONTACT = {
    "name": "iam-create-access-key maintainers",
    "url": "README.md#run-it-in-shuffle",
}
# The root README's Shuffle section: the source of the app folder's own README.md, which
# Shuffle's backend reads into the app's documentation (walkoff.go; python-apps' aws-iam/1.0.0).
SECTION = "### Run it in Shuffle"
# The extras the app's image installs beside the runtime.
APP_EXTRAS = ("seal", "shuffle")
# The build backends of the packages the image builds from their sdist, installed first (hashed)
# so that the app's requirements install with --no-build-isolation: pip's hash-checking mode
# covers what it installs, not what it fetches into an isolated build. Measured for app_sdk's
# Alpine and Python 3.14 (pip download --only-binary :all: --platform musllinux_1_2_x86_64
# --python-version 3.14 of every pin): only these two have no wheel; their sdists'
# pyproject.toml ask for these backends.
BUILD_REQUIREMENTS = {
    "maturin<2.0,>=1.0": "pyrage 1.4.0 (no musllinux wheel)",
    "setuptools>=70.1": "markupsafe 3.0.2 (no cp314 musllinux wheel)",
}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's date: the same zip from the same code

# The order of Shuffle's editor: what nearly every step fills, then where the secret goes,
# then the rest. A parameter the manifest gains later comes after these, in manifest order.
ORDER = (
    "user_name",
    "regions",
    "seal_secret_to",
    "vault",
    "idempotency_key",
    "expires_after",
    "description",
    "wait_for_user",
    "status",
    "at_limit",
    "wait_until_usable",
    "check_only",
    "report_other_keys",
    "ses_smtp_region",
    "disable_xml_to_json",
)
# Shuffle's editor shows a parameter's description under its field: one short line each (the
# manifest's full text is in the README's Parameters table). A parameter not named here gets
# the first sentence of its manifest description (the entries of parameters the manifest does not
# have yet wait for them).
WORDING = {
    "user_name": "The IAM user that gets the new key (a $reference to the Create User step). "
    "Empty: the identity that signs.",
    "regions": "us-east-1, a list (us-east-1,eu-west-2) or *: chooses the AWS partition; "
    "one key either way.",
    "seal_secret_to": "An age public key (age1...): the secret comes back encrypted to it, "
    "never in clear in the execution.",
    "vault": "secretsmanager:NAME or ssm:NAME: the secret goes there and the result says "
    "where, never the secret.",
    "idempotency_key": "A token per step ($exec.execution_id): a retried step makes one key, "
    "not two.",
    "wait_for_user": "Seconds to wait for a user created a moment ago (IAM shows new users "
    "late); 0 to 60.",
    "status": "Active (the default) or Inactive: an Inactive key cannot sign until activated.",
    "at_limit": "The user already has two keys: fail (lists them), or delete_oldest_inactive.",
    "wait_until_usable": "true: wait until STS accepts the new key, so the next step can use "
    "it at once.",
    "check_only": "true: check everything and report what would happen; create nothing.",
    "ses_smtp_region": "An AWS region: the result also carries the key's SES SMTP password there.",
    "expires_after": "15m to 365d (8h, 7d): AWS deletes the key then (an EventBridge Scheduler "
    "schedule).",
    "description": "Shown in the console's Description column of the key (up to 256 characters).",
    "report_other_keys": "true: the result also lists the user's other keys and their last use "
    "(rotations).",
    "disable_xml_to_json": "true: return IAM's raw XML answer (no sealing, vault or other "
    "option then).",
}
_AUTHENTICATION_WORDING = {
    "access_key_id": "Access key ID of the AWS identity that creates the key.",
    "secret_access_key": "Its secret access key.",
    "session_token": "Session token of temporary credentials; a single space if none.",
    "region": "Default region (us-east-1); a single space for the default.",
}


def api_document() -> dict[str, Any]:
    """Shuffle's api.yaml for the action, from action.yaml and schemas/."""
    document = resources.manifest()
    connection = resources.schema("connection")["properties"]
    return {
        "app_version": str(document["version"]),
        "name": NAME,
        "description": document["description"],
        "contact_info": CONTACT,
        "tags": ["AWS", "IAM", "Access keys"],
        "categories": ["IAM"],
        # required: true, or Shuffle never passes the fields to the app (walkoff.go).
        "authentication": {
            "required": True,
            "parameters": [_authentication_field(n, connection[n]) for n in AUTHENTICATION],
        },
        "actions": [
            {
                "name": ACTION,
                "description": f"{document['display_name']}: {_first_sentence(document)}",
                "parameters": [_parameter(entry) for entry in _ordered(manifest.parameters())],
                "returns": {"example": _returns_example(document), "schema": {"type": "string"}},
            }
        ],
        "large_image": icon.data_url(),
    }


def _ordered(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = [p for p in parameters if p["name"] not in OPERATOR_PARAMETERS]
    rank = {name: index for index, name in enumerate(ORDER)}
    return sorted(shown, key=lambda p: (rank.get(p["name"], len(ORDER)), p["order"]))


def _first_sentence(entry: Mapping[str, Any]) -> str:
    match = re.match(r"(.+?\.)(?:\s|$)", entry["description"])
    return match.group(1) if match else str(entry["description"])


def _authentication_field(name: str, rules: Mapping[str, Any]) -> dict[str, Any]:
    # Shuffle's form shows an example as if it were a value: the secrets show a mask, the
    # session token a space (the value that means "none"). No schema.format: the backend's
    # struct has no such field, and a field named like a secret is masked anyway.
    secret = bool(rules.get("secret") or rules.get("writeOnly"))
    examples = rules.get("examples", [])
    example = (
        "*****" if secret or name == "access_key_id" else (str(examples[0]) if examples else " ")
    )
    return {
        "name": name,
        "description": _AUTHENTICATION_WORDING[name],
        "example": " " if name == "session_token" else example,
        "required": name in ("access_key_id", "secret_access_key"),
        "schema": {"type": "string"},
    }


def _parameter(entry: Mapping[str, Any]) -> dict[str, Any]:
    examples = entry.get("examples", [])
    example = examples[0] if examples else entry.get("default", "")
    parameter: dict[str, Any] = {
        "name": entry["name"],
        "description": WORDING.get(entry["name"]) or _first_sentence(entry),
        "required": bool(entry["required"]),
        "multiline": False,
        "example": _as_text(example),
        "schema": {"type": "string"},
    }
    if entry.get("type") == "boolean":
        parameter["options"] = ["false", "true"]
    elif "enum" in entry:
        parameter["options"] = [str(choice) for choice in entry["enum"]]
    return parameter


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _returns_example(document: Mapping[str, Any]) -> str:
    return json.dumps({"success": True, **document["output"]["example"]}, indent=2)


def render_api() -> str:
    """api.yaml's text, as checked in."""
    import yaml

    header = "# Generated from action.yaml and schemas/ by `make shuffle-app`; never edited.\n"
    return header + yaml.safe_dump(api_document(), sort_keys=False, width=100)


def _members() -> Iterator[tuple[str, Path]]:
    """(name in the zip, file): the plugin package, with the manifest and schemas inside it,
    as the wheel holds them (pyproject.toml's force-include)."""
    package = ROOT / "plugin"
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".typed", ".proto"):
            yield path.relative_to(ROOT).as_posix(), path
    yield "plugin/action.yaml", ROOT / "action.yaml"
    for path in sorted((ROOT / "schemas").glob("*.json")):
        yield f"plugin/schemas/{path.name}", path


def vendored_zip() -> bytes:
    """The action's code as one zip, the same bytes from the same files (stored, not
    deflated: compressors differ between machines; fixed dates and modes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, path in sorted(_members()):
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def build_requirements() -> str:
    """build-requirements.in: the backends of the sdists the image builds (BUILD_REQUIREMENTS)."""
    header = "# Build backends of the sdists the image builds, by `make shuffle-app`.\n"
    return header + "".join(f"{spec}  # {why}\n" for spec, why in BUILD_REQUIREMENTS.items())


def app_source(digest: str, lock_digest: str) -> str:
    """src/app.py: load the vendored zip (checked), then one AppBase subclass."""
    version = resources.manifest()["version"]
    return f'''"""{NAME} as a Shuffle app (generated by `make shuffle-app`; never edited).

The action's code is the zip beside this file (one flat file, as Shuffle's cloud build keeps
src/): checked against its SHA-256, then imported from it. plugin.hosts.shuffle.app reads
Shuffle's arguments as every door of the action does, within the time the SDK gives a call, and
answers in Shuffle's convention; it never raises.
"""

import hashlib
import os
import sys

VENDORED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{VENDORED}")
VENDORED_SHA256 = "{digest}"
# The SHA-256 of requirements.txt then build-requirements.txt: Shuffle's hot-load rebuilds an
# app when app.py changes, not when the requirements do (walkoff.go hashes api.yaml, src/app.py
# and the Dockerfile).
REQUIREMENTS_SHA256 = "{lock_digest}"

with open(VENDORED, "rb") as stream:
    if hashlib.sha256(stream.read()).hexdigest() != VENDORED_SHA256:
        raise ImportError(VENDORED + " is not the code this app was generated with")
sys.path.insert(0, VENDORED)

from shuffle_sdk import AppBase  # noqa: E402

from plugin.hosts.shuffle import app  # noqa: E402


class {CLASS}(AppBase):
    __version__ = "{version}"
    app_name = "{NAME}"

    def __init__(self, redis, logger, console_logger=None):
        super().__init__(redis, logger, console_logger)
        app.guard_logs(self.logger)

    def {ACTION}(self, **fields):
        # The run's start, shared by every item of a loop: the SDK's timeout covers them all.
        return app.{ACTION}(fields, os.environ, app.run_started(self))


if __name__ == "__main__":
    {CLASS}.run()
'''


def direct_requirements() -> str:
    """requirements.in: what the app needs directly, from the installed project's metadata
    (pyproject.toml): the runtime, sealing (the `seal` extra) and Shuffle's SDK (`shuffle`)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    lines = []
    for text in metadata.requires("iam-create-access-key") or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in APP_EXTRAS):
            requirement.marker = None
            lines.append(f"{requirement}\n")
    header = "# What the app needs directly (pyproject.toml), by `make shuffle-app`.\n"
    return header + "".join(sorted(lines, key=str.lower))


def app_readme() -> str:
    """The app folder's README.md: the form's fields and arguments (api.yaml's words), then the
    root README's Shuffle section, its links pointed back at the root README."""
    document = api_document()
    (action,) = document["actions"]
    lines = [
        f"# {NAME}",
        "",
        "<!-- Generated by `make shuffle-app` from api.yaml and the project's README.md "
        "(section Run it in Shuffle); never edited. -->",
        "",
        document["description"],
        "",
        "## Authentication",
        "",
        "| Field | Required | What to fill |",
        "|---|---|---|",
        *[
            f"| `{f['name']}` | {'yes' if f['required'] else 'no'} | {f['description']} |"
            for f in document["authentication"]["parameters"]
        ],
        "",
        f"## Action `{action['name']}`",
        "",
        "| Argument | Required | What it does |",
        "|---|---|---|",
        *[
            f"| `{p['name']}` | {'yes' if p['required'] else 'no'} | {p['description']} |"
            for p in action["parameters"]
        ],
        "",
        _readme_section(),
    ]
    return "\n".join(lines)


def _readme_section() -> str:
    """The root README's Shuffle section, one heading level up, relative links made to work
    from the app folder (three levels down)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION + "\n")
    end = text.find("\n## ", start)
    section = text[start : end if end >= 0 else len(text)].rstrip() + "\n"
    section = section.replace(SECTION, "## Run it in Shuffle", 1)
    section = re.sub(r"\]\(#", "](../../../README.md#", section)
    return re.sub(r"^#### ", "### ", section, flags=re.MULTILINE)


def generated() -> dict[str, bytes]:
    """Every generated file of the app folder but the two locks (pip-compile's), by path."""
    archive = vendored_zip()
    locks = [APP / "requirements.txt", APP / "build-requirements.txt"]
    lock = b"".join(path.read_bytes() for path in locks if path.is_file())
    files = {
        "requirements.in": direct_requirements().encode(),
        "build-requirements.in": build_requirements().encode(),
        "api.yaml": render_api().encode(),
        "README.md": app_readme().encode(),
        f"src/{VENDORED}": archive,
        "src/app.py": app_source(
            hashlib.sha256(archive).hexdigest(), hashlib.sha256(lock).hexdigest()
        ).encode(),
    }
    return files


def main(argv: list[str]) -> int:
    """`python -m plugin.hosts.shuffle.folder`: write the app folder's generated files."""
    if argv:
        sys.stderr.write("usage: python -m plugin.hosts.shuffle.folder\n")
        return 2
    for relative, content in generated().items():
        (APP / relative).write_bytes(content)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
