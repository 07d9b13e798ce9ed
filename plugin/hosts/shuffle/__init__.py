"""The Shuffle app: the action in Shuffle's conditions.

- app: the one function the generated app.py calls;
- settings: what the app's operator decides, read from the app container's environment;
- folder: the app's folder, generated (`make shuffle-app`; `python -m plugin.hosts.shuffle.folder`);
- icon: the app's icon, drawn as a PNG.

This file imports nothing.
"""
