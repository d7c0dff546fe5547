# syntax=docker/dockerfile:1
# One image per model service; the build argument SERVICE picks it:
#   docker build --build-arg SERVICE=bankchurn -t bankchurn:dev .
# Runs as 10001:10001 (the UID/GID the Kubernetes manifests set) on a read-only root
# filesystem: nothing is written outside /tmp (an emptyDir in the pods; HOME points there).
# Base images are pinned to a version tag, not a digest (pin one with @sha256:... when promoting,
# e.g. python:3.11.14-slim-bookworm@sha256:<digest>). CI records the digest of each image it pushes,
# as each registry answers, in its images job's summary (.github/workflows/ci.yml).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm AS build
ARG SERVICE
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
COPY --from=uv /uv /usr/local/bin/uv
WORKDIR /src
# Dependencies first (from the lock file only), so code edits do not rebuild them.
COPY pyproject.toml uv.lock ./
COPY services/servekit/pyproject.toml services/servekit/
COPY services/bankchurn/pyproject.toml services/bankchurn/
COPY services/nlpinsight/pyproject.toml services/nlpinsight/
COPY services/chicagotaxi/pyproject.toml services/chicagotaxi/
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<bankchurn|nlpinsight|chicagotaxi>"; exit 2; } \
    && uv sync --frozen --no-dev --no-install-workspace --package "${SERVICE}"
COPY services/ services/
RUN uv sync --frozen --no-dev --no-editable --package "${SERVICE}" \
    && /app/.venv/bin/mlp services | grep -q "^${SERVICE}[[:space:]]"

FROM python:3.11.14-slim-bookworm AS runtime
ARG SERVICE
# The commit built (CI passes it): GET /model's serving_code names it, as no git checkout is here.
ARG REVISION=""
LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.description="ML platform model service ${SERVICE} (servekit)" \
      org.opencontainers.image.revision="${REVISION}"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    MLP_SERVICE=${SERVICE} \
    MLP_CODE_REVISION=${REVISION} \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
# The Open Inference Protocol over gRPC, when <SVC>_GRPC_PORT=8081 (the Kubernetes base sets it).
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["mlp", "serve", "--host", "0.0.0.0", "--port", "8080"]
