# The plugin as Blink's runner runs plugins: a container on the pod network, serving Blink's
# plugin protocol on :1337 (as the SDK's own images do). tests/test_container.py lints this file
# (hadolint) and performs its steps outside a container; no image was built on the machine that
# wrote it (it has no container daemon).

# ---- build: the wheel, from the checkout -----------------------------------------------------
FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md action.yaml ./
COPY schemas ./schemas
COPY plugin ./plugin
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---- runtime: the wheel and its serve dependencies, nothing else -----------------------------
FROM python:3.11.7-slim-bookworm
COPY --from=build /dist /dist
RUN pip install --no-cache-dir --find-links=/dist "iam-create-access-key[serve]==0.1.0" \
    && rm -rf /dist \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin plugin
# Nothing is written at run time: no bytecode, no home, no temporary files (read-only root).
# The runner dials plugins in plaintext on the pod network: close it to all but the runner
# (deploy/kubernetes/networkpolicy.yaml). The server lends its own AWS identity to nobody
# unless IAM_CREATE_ACCESS_KEY_LEND_IDENTITY says so (README: Security model).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IAM_CREATE_ACCESS_KEY_HOST=0.0.0.0 \
    IAM_CREATE_ACCESS_KEY_PORT=1337 \
    IAM_CREATE_ACCESS_KEY_INSECURE_PLAINTEXT=true \
    IAM_CREATE_ACCESS_KEY_GRACE=60
USER 10001:10001
EXPOSE 1337
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["iam-create-access-key", "health"]
# The server is PID 1 and handles SIGTERM itself: it finishes the calls in flight within the
# grace and exits within 4 s after it, whatever they are blocked on.
ENTRYPOINT ["iam-create-access-key", "serve"]
