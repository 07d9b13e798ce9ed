"""Where a secret goes besides the answer.

- seal: seal the secret to an age recipient;
- unseal: `unseal`, open what Seal Secret To sealed;
- vault: hand the secret to Secrets Manager or SSM Parameter Store;
- smtp: the SES SMTP password derived from the secret;
- output_file: the result into a new file only its owner can read.

Imports delivery, aws, the runtime and the contract. This file imports nothing.
"""
