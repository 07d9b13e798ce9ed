"""The action's parameters as the tests expect them: name, display name and group, in order."""

from __future__ import annotations

EXPECTED_PARAMETERS = [
    ("regions", "AWS Region(s)", "basic"),
    ("user_name", "User Name", "basic"),
    ("disable_xml_to_json", "Disable XML To JSON Auto Convert", "advanced"),
    ("status", "Status At Creation", "advanced"),
    ("at_limit", "At The Two-Key Limit", "advanced"),
    ("seal_secret_to", "Seal Secret To (age recipient)", "advanced"),
    ("vault", "Hand Secret To Vault", "advanced"),
    ("check_only", "Check Only", "advanced"),
    ("wait_for_user", "Wait For A New User (seconds)", "advanced"),
    ("wait_until_usable", "Wait Until The Key Works", "advanced"),
    ("ses_smtp_region", "SES SMTP Password For Region", "advanced"),
    ("idempotency_key", "Idempotency Key", "advanced"),
    ("description", "Description", "advanced"),
    ("expires_after", "Expires After", "advanced"),
    ("expiry_role_arn", "Expiry Role ARN", "advanced"),
    ("report_other_keys", "Report The User's Other Keys", "advanced"),
]
