# The plugin as Blink's runner runs plugins: a container on the pod network, serving Blink's
# plugin protocol on :1337 (as the SDK's own images do). tests/test_container.py lints this file
# (hadolint) and performs its steps outside a container; no image was built on the machine that
# wrote it (it has no container daemon).
#
# Nothing comes from an index unless a lock names it with its hashes: the build backend
# (requirements/build.txt) and the serve dependencies (requirements/serve.txt), both made from
# pyproject.toml by `make lock`, installed with --require-hashes and wheels only; the action's
# own wheel is installed from the build stage with --no-deps --no-index, so its name is never
# looked up on an index. The base image is pinned by the digest of its multi-platform index:
# the one docker-library/repo-info records for python:3.11.15-slim-bookworm
# (repos/python/remote/3.11.15-slim-bookworm.md). A new digest is a reviewed change.

# ---- build: the wheel, from the checkout -----------------------------------------------------
# python:3.11.15-slim-bookworm
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3 AS build
WORKDIR /src
COPY requirements/build.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements/build.txt
COPY pyproject.toml README.md action.yaml ./
COPY schemas ./schemas
COPY plugin ./plugin
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .

# ---- runtime: the locked serve dependencies and the wheel, nothing else ----------------------
# python:3.11.15-slim-bookworm
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3
COPY requirements/serve.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY --from=build /dist /dist
RUN pip install --no-cache-dir --no-deps --no-index /dist/iam_create_access_key-0.1.0-py3-none-any.whl \
    && pip check \
    && rm -rf /dist \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin plugin \
    && install -d -o 10001 -g 0 -m 0770 /run/iam-create-access-key
# The health socket's folder: the image's user, and group 0, which an arbitrary user is run with
# (OpenShift's restricted SCC, `docker run --user N`): with 0700 such a user could not create
# the socket and serve refused to start (the Kubernetes review). The socket itself is 0600.
# Nothing is written at run time: no bytecode, no home, no temporary files (read-only root).
# The runner dials plugins in plaintext on the pod network: close it to all but the runner
# (deploy/kubernetes/networkpolicy.yaml). The server lends its own AWS identity to nobody
# unless IAM_CREATE_ACCESS_KEY_LEND_IDENTITY says so (README: Security model). The port is
# the default (1337), not a variable: the kubelet's service links for a Service named
# iam-create-access-key replace IAM_CREATE_ACCESS_KEY_PORT in every pod of the namespace.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IAM_CREATE_ACCESS_KEY_HOST=0.0.0.0 \
    IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT=true \
    IAM_CREATE_ACCESS_KEY_GRACE=60 \
    IAM_CREATE_ACCESS_KEY_HEALTH_SOCKET=/run/iam-create-access-key/health.sock
# The health socket's folder, the user's own: a volume, so that it stays writable under a
# read-only root (docker run --read-only; in Kubernetes an emptyDir mounted there).
VOLUME ["/run/iam-create-access-key"]
USER 10001:10001
EXPOSE 1337 1338
STOPSIGNAL SIGTERM
# Health is asked on the health socket (grpc.health.v1 alone, mode 0600), which no network
# caller can reach or fill (README: Operations). The health port (1338, plaintext) stays for
# the kubelet's gRPC probes, which an operator may prefer; whoever reaches it can hold its
# connections. A flag, not a variable: the kubelet's link for a Service named
# iam-create-access-key-health would replace IAM_CREATE_ACCESS_KEY_HEALTH_PORT (and the probe
# would find nothing there). So the variable is ignored in this image; to move the port, append
# `--health-port N` to the container's arguments (the last flag wins; README: Deploy beside a
# Blink runner).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["iam-create-access-key", "health", "--health-socket", "/run/iam-create-access-key/health.sock"]
# The server is PID 1 and handles SIGTERM itself: it finishes the calls in flight within the
# grace and exits within 4 s after it, whatever they are blocked on.
ENTRYPOINT ["iam-create-access-key", "serve", "--health-port", "1338"]
