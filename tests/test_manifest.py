"""The manifest, the schemas and the README agree; the example output is a valid result."""

from __future__ import annotations

import re

import jsonschema
import pytest

from plugin.contract import manifest, resources
from tests.support.parameters import EXPECTED_PARAMETERS
from tests.support.paths import ROOT


def test_action_identity() -> None:
    document = resources.manifest()
    assert document["display_name"] == "IAM Create Access Key"
    assert document["connection"]["type"] == "aws"
    assert document["entry_point"] == "plugin:execute"
    assert document["description"].strip()


def test_parameters_in_order_with_their_form_fields() -> None:
    found = [(p["name"], p["display_name"], p["group"]) for p in manifest.parameters()]
    assert found == EXPECTED_PARAMETERS
    assert [p["order"] for p in manifest.parameters()] == list(
        range(1, len(EXPECTED_PARAMETERS) + 1)
    )
    assert all(p["description"].strip() for p in manifest.parameters())


def test_manifest_and_input_schema_name_the_same_parameters_in_the_same_order() -> None:
    in_manifest = [p["name"] for p in resources.manifest()["parameters"]]
    assert in_manifest == list(resources.schema("input")["properties"])


def test_the_manifest_carries_no_rules_and_the_schema_no_form_fields() -> None:
    """One source of truth: rules live in the schema, form fields in the manifest."""
    rules = {"type", "pattern", "default", "minLength", "maxLength", "enum", "required"}
    for entry in resources.manifest()["parameters"]:
        assert not rules & set(entry), entry["name"]
    form = {"display_name", "group", "order", "description", "title"}
    for name, property_rules in resources.schema("input")["properties"].items():
        assert not form & set(property_rules), name


def test_parameter_rules_are_the_products() -> None:
    by_name = {p["name"]: p for p in manifest.parameters()}
    assert by_name["user_name"]["pattern"] == r"^[\w+=,.@-]+$"
    assert (by_name["user_name"]["minLength"], by_name["user_name"]["maxLength"]) == (1, 64)
    assert by_name["user_name"]["required"] is False
    assert by_name["disable_xml_to_json"]["type"] == "boolean"
    assert by_name["disable_xml_to_json"]["default"] is False
    assert by_name["regions"]["default"] == "*"
    assert (by_name["wait_for_user"]["type"], by_name["wait_for_user"]["default"]) == (
        "integer",
        10,
    )
    assert (by_name["wait_for_user"]["minimum"], by_name["wait_for_user"]["maximum"]) == (0, 60)
    assert by_name["wait_until_usable"]["default"] is False


@pytest.mark.parametrize("kind", ["input", "output", "connection"])
def test_schemas_are_valid_json_schema(kind: str) -> None:
    schema = resources.schema(kind)
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_example_output_is_a_valid_result() -> None:
    example = resources.manifest()["output"]["example"]
    jsonschema.validate(example, resources.schema("output"))


def test_the_secret_is_marked_in_the_output_schema() -> None:
    secret = resources.schema("output")["properties"]["AccessKey"]["properties"]["SecretAccessKey"]
    assert secret["writeOnly"] is True
    assert secret["secret"] is True
    smtp = resources.schema("output")["properties"]["AccessKey"]["properties"]["SesSmtpPasswordV4"]
    assert smtp["writeOnly"] is True
    assert smtp["secret"] is True
    assert manifest.describe()["output"]["secret_fields"] == [
        "AccessKey.SecretAccessKey",
        "AccessKey.SesSmtpPasswordV4",
    ]


def test_the_user_name_is_optional_in_the_output_for_root_keys() -> None:
    access_key = resources.schema("output")["properties"]["AccessKey"]
    assert "UserName" not in access_key["required"]
    assert "root user" in access_key["properties"]["UserName"]["description"]


def test_readme_parameters_table_equals_the_manifest() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\|---\|---\|---\|---\|---\|---\|---\|\n(.*?)\n<!-- end", readme, re.S)
    assert block is not None
    assert block.group(1) == manifest.parameters_table(), (
        "README's table is stale; paste this:\n" + manifest.parameters_table()
    )


def test_readme_opens_with_the_demo_and_test_commands_and_ci_runs_the_second() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "```sh"
    demo, tests = lines[1], lines[2]
    assert lines[3] == "```"
    assert demo.startswith("python3 -m venv .venv")
    assert demo.endswith("iam-create-access-key demo")
    assert tests.endswith("python -m pytest")
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_the_manifest_references_the_schemas_the_plugin_reads() -> None:
    assert resources.manifest()["schemas"] == {
        kind: resources.schema_path(kind) for kind in ("input", "output")
    }
    assert resources.manifest()["connection"]["schema"] == resources.schema_path("connection")


def test_the_manifest_references_the_connection_schema_and_its_check() -> None:
    connection = resources.manifest()["connection"]
    assert connection["schema"] == "schemas/connection.schema.json"
    assert connection["test_entry_point"] == "plugin:test_connection"
    fields = list(resources.schema("connection")["properties"])
    assert fields == [
        "access_key_id",
        "secret_access_key",
        "session_token",
        "role_arn",
        "external_id",
        "role_session_name",
        "duration_seconds",
        "region",
        "endpoint_url",
    ]
    secrets = {
        name
        for name, rules in resources.schema("connection")["properties"].items()
        if rules.get("secret")
    }
    assert secrets == {"secret_access_key", "session_token"}
