"""Talking to AWS: sign in, build clients, read what AWS answered and what botocore raised.

- sessions: sign in the way the connection says (static keys, a role, the default chain);
- clients: the IAM client an invocation calls through (no retries of its own), and what every
  client keeps to (no clear text, answers of a few hundred KiB at most, bounded sends);
- services: which service and endpoint a failed call was for, from the client's model;
- convert: IAM's XML to the documented JSON shape, every value IAM's own string;
- client_errors: what boto3/botocore raise, read into the product's ActionError.

Imports aws, the runtime and the contract. This file imports nothing.
"""
