"""What an operator decides, for the doors that serve callers (serve and Shuffle).

- settings: the settings table (each setting's flag, variable, kind, default, help; one typed
  ServeSettings). serve reads every row; the Shuffle app reads its own rows (lend identity,
  vault prefix, expiry role) through the same rows, so a value means one thing on both doors;
- policy: what a caller of serve may ask for (whose AWS identity signs, which endpoints, roles
  and vault names). The Shuffle app answers fewer questions (its workflow author is not a
  tenant: no endpoints or roles to allow) and says its refusals in its own words (the app's
  settings, not flags); the rule both apply to vault names is delivery.vault.outside.

This file imports nothing.
"""
