"""One invocation: from a checked request to a checked result, and the steps around the create.

- run: one invocation of the action, end to end (the engine calls it);
- create: the one place that calls CreateAccessKey (exactly one key, its secret once);
- reconcile: after an ambiguous failure, find the key the call may have made, and remove it;
- idempotency: exactly once across an engine's retries (a token remembered in IAM);
- lease: at most one attempt per Idempotency Key acts at a time;
- limit: at IAM's two-key limit, say which keys are there or make room;
- other_keys: Report The User's Other Keys;
- description: the key's description (the user tag the console shows);
- expiry: Expires After (a one-time EventBridge Scheduler schedule);
- wait_for_user: wait for a user IAM does not show yet;
- usable: wait until the new key works (STS accepts it);
- check_only: the Check Only parameter (what the action would do);
- connection_test: test-connection (who does the connection sign in as?).

Imports the invocation, delivery, aws, the runtime and the contract. This file imports nothing.
"""
