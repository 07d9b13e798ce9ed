# Small task runner; the README's two commands do the same without make.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench proto shuffle-app lock

$(PY):
	python3 -m venv $(VENV)

demo: $(PY)
	$(PY) -m pip install -q '.[demo]' && $(VENV)/bin/iam-create-access-key demo

test: $(PY)
	$(PY) -m pip install -q -e '.[dev]' && $(PY) -m pytest

bench: $(PY)
	$(PY) -m pip install -q -e '.[dev]' && $(PY) -m tests.benchmark

# The gRPC modules of the plugin protocol, from plugin/hosts/serve/protocol/integration_pack.proto.
proto: $(PY)
	$(PY) -m pip install -q -e '.[dev]' && $(PY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. plugin/hosts/serve/protocol/integration_pack.proto

# The Shuffle app's folder (plugin.hosts.shuffle.folder): requirements.in, api.yaml, the vendored code;
# requirements.in and build-requirements.in pinned with hashes (pip-compile); then app.py (their
# digests).
SHUFFLE_APP := shuffle/iam-create-access-key/0.1.0
shuffle-app: $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m plugin.hosts.shuffle.folder
	cd $(SHUFFLE_APP) && env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
		../../../$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --annotation-style=line \
		--output-file requirements.txt requirements.in
	cd $(SHUFFLE_APP) && env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
		../../../$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --annotation-style=line \
		--output-file build-requirements.txt build-requirements.in
	$(PY) -m plugin.hosts.shuffle.folder

# The container image's hash-locked requirements, from pyproject.toml: the serve dependencies
# (requirements/serve.txt) and the build backend (requirements/build.txt), newest releases with
# the hashes of every file the index holds for them. Run with Python 3.11, the image's; the
# machine's own pip configuration (local folders, extra indexes) is left out, as in the image.
lock: $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(PY) -m piptools compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --extra serve --output-file requirements/serve.txt pyproject.toml
	env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(PY) -m piptools compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --only-build-deps --build-deps-for wheel --output-file requirements/build.txt pyproject.toml
	$(PY) -m tests.support.lockfile
