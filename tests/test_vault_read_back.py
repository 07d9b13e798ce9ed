"""The Idempotency Key's read-back from a vault checks the vault's ownership tag, as the write
does: a target that lost the tag (or never had it) is refused, whatever it holds."""

from __future__ import annotations

import pytest

from plugin import execute
from tests.support.local_iam import LocalIAM


def attempt(iam: LocalIAM, user: str, vault: str) -> dict:  # type: ignore[type-arg]
    return execute(
        {
            "parameters": {"user_name": user, "idempotency_key": "run-9/step-2", "vault": vault},
            "connection": iam.connection(),
        }
    )


@pytest.mark.parametrize("kind", ["ssm", "secretsmanager"])
def test_a_vault_that_is_no_longer_ours_is_not_read_back(iam: LocalIAM, kind: str) -> None:
    user = iam.new_user()
    name = f"/ci/untagged/{user}"
    first = attempt(iam, user, f"{kind}:{name}")
    assert first["error_code"] == 0, first["error_message"]
    # Someone else takes the target over: the tag is gone, the document (our key id) stays.
    if kind == "ssm":
        iam.client("ssm").remove_tags_from_resource(
            ResourceType="Parameter", ResourceId=name, TagKeys=["created-by"]
        )
    else:
        iam.client("secretsmanager").untag_resource(SecretId=name, TagKeys=["created-by"])

    again = attempt(iam, user, f"{kind}:{name}")

    assert again["error_code"] == 3
    assert again["error_message"] == (
        f'CreateAccessKey failed for user "{user}": parameters.vault: {kind}:{name} exists and '
        "was not created by this action (it has no tag created-by=iam-create-access-key); it is "
        "never overwritten, so nothing was created: name a new secret or parameter"
    )
    assert iam.key_ids(user) == [first["result"]["AccessKey"]["AccessKeyId"]]
