"""What an operator decides, shared by the doors that serve callers (serve and Shuffle).

- settings: serve's settings table (each flag's name, kind, default, help, environment variable);
- policy: what a caller may ask for (whose AWS identity signs, which endpoints and vault names).

This file imports nothing.
"""
