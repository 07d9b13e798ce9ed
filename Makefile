# Small task runner; the README's two commands do the same without make.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench proto shuffle-app

$(PY):
	python3 -m venv $(VENV)

demo: $(PY)
	$(PY) -m pip install -q '.[demo]' && $(VENV)/bin/iam-create-access-key demo

test: $(PY)
	$(PY) -m pip install -q -e '.[dev]' && $(PY) -m pytest

bench: $(PY)
	$(PY) -m pip install -q -e '.[dev]' && $(PY) -m tests.benchmark

# The gRPC modules of the plugin protocol, from plugin/serve/protocol/integration_pack.proto.
proto: $(PY)
	$(PY) -m pip install -q -e '.[dev]' && $(PY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. plugin/serve/protocol/integration_pack.proto

# The Shuffle app's folder (plugin.shuffle_folder): requirements.in, api.yaml, the vendored code;
# requirements.in pinned with hashes (pip-compile); then requirements.txt and app.py from the lock.
SHUFFLE_APP := shuffle/iam-create-access-key/0.1.0
shuffle-app: $(PY)
	$(PY) -m pip install -q -e '.[dev]' 'pip-tools==7.6.2'
	$(PY) -m plugin.shuffle_folder
	cd $(SHUFFLE_APP) && ../../../$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --annotation-style=line \
		--output-file requirements.lock requirements.in
	$(PY) -m plugin.shuffle_folder
