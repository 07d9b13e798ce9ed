"""The contract: what a request is and what an answer is, read from action.yaml and schemas/.

- manifest: the manifest as an engine or a form reads it (action.yaml joined with the schemas);
- resources: finds and loads action.yaml and schemas/ shipped with the package (also from a zip);
- validation: a document checked against one schema, every bad field reported by path;
- request: one engine request validated and normalised before anything is sent to AWS;
- recipients: an age recipient (Seal Secret To) read, or why it is not one;
- secret_fields: which fields the schemas mark secret (the manifest shows, the redactor masks);
- regions: the AWS Region(s) parameter as a plan (one partition, its regions, a signing region);
- lifetime: a key's life as its parameters say it (expiry, description words);
- json_input: JSON from outside (stdin, parameters_as_json), read defensively;
- errors: the product's one error type (ActionError, Category) and its exit/error codes.

Imports only the contract (see plugin/__init__.py for the rule). This file imports nothing.
"""
