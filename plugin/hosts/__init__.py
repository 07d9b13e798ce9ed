"""The doors: every way a person or a platform reaches the engine (plugin.engine).

- cli: the command line (`run`, `execute`, `describe`, `serve`, `health`, `demo`, `unseal`);
- demo: a two-step workflow on an embedded local IAM;
- serve/: Blink's plugin protocol over gRPC (its own index);
- shuffle/: the Shuffle app (the function its app.py calls, its settings, its generated folder);
- operator/: what the operator of serve and of the Shuffle app decides (settings, policy).

Hosts may import every wing; nothing imports hosts. A door reaches only operator/ and its own
package; the command line also the doors it hosts (serve, health, demo). This file imports
nothing.
"""
