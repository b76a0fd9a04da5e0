# syntax=docker/dockerfile:1
#
# shopify-ingest: `docker build -t shopify-ingest .`
#
# Two stages: the builder turns uv.lock into a virtualenv (production
# dependencies only: no `dev`, no `embedded` group); the runtime image holds
# that virtualenv and the source the service runs from, nothing else.
# Both stages use the same Python image, so the virtualenv's interpreter path
# (/usr/local/bin/python3.11) exists in the runtime image.
#
# Keep in step with app/devtools/stack.py (SERVICE_COMMAND, IMAGE_ENV,
# IMAGE_SOURCE); tests/e2e/test_deployment_files.py checks it.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.16-slim-bookworm AS builder

COPY --from=uv /uv /bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /build
# Only the lock and the project file: source changes do not rebuild this layer.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --frozen --no-dev --no-group embedded --no-install-project


FROM python:3.11.16-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:$PATH" \
    HOST=0.0.0.0 \
    PORT=8000

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# The service runs from its source tree (pyproject.toml: package = false).
# Owned by root and read-only for the service's user.
WORKDIR /app
COPY piccolo_conf.py ./
COPY migrations ./migrations
COPY app ./app
RUN python -m compileall -q app migrations piccolo_conf.py

# Numeric (the `app` user and group above): Kubernetes' runAsNonRoot can only
# verify a numeric user, and no name lookup is needed at run time.
USER 10001:10001

EXPOSE 8000

# Liveness (/health never touches the database). No curl in the slim image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

# Uvicorn, with WEB_CONCURRENCY worker processes, on HOST:PORT. On SIGTERM it
# stops accepting, finishes the requests in flight, then exits.
CMD ["python", "-m", "app", "serve"]
