# syntax=docker/dockerfile:1
# The gateway image: FastAPI under gunicorn (services/gateway/gunicorn.conf.py), plus the
# `speech-client` CLI and one short clip, so that the chart's `helm test` hook can stream
# through the front from this same image. Build from the repository root:
#     docker build -f deploy/docker/gateway.Dockerfile -t speech-gateway .
#
# Base: the official python image by exact tag and index digest (docker-library/repo-info,
# repos/python/remote/3.11.16-slim-bookworm.md, 2026-09-01). Bump both together.

# --- build: a virtual environment with the gateway and the client, pinned by constraints.txt
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every dependency has a manylinux wheel (--only-binary: a dependency without one fails the
# build instead of compiling), so no compiler is installed even here. The same constraints
# file as `make install`.
COPY constraints.txt ./
COPY services/gateway/ services/gateway/
COPY clients/python/ clients/python/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: -c constraints.txt \
        ./services/gateway ./clients/python \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- clip: the 2.8 s "go forward ten meters" recording of Debian's PocketSphinx test data
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f AS clip
RUN apt-get update \
    && apt-get install -y --no-install-recommends pocketsphinx-testdata=0.8+5prealpha+1-15 \
    && rm -rf /var/lib/apt/lists/*

# --- runtime: no compilers, no pip cache, a non-root numeric user, read-only friendly
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

LABEL org.opencontainers.image.title="speech-gateway" \
      org.opencontainers.image.description="Real-time speech gateway: WebSocket in, Riva gRPC out, state in Redis"

# Numeric ids so that Kubernetes' runAsNonRoot can check them without reading /etc/passwd.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
COPY --from=clip /usr/share/pocketsphinx/test/data/goforward.raw /opt/speech-fleet/clips/goforward.raw
COPY services/gateway/gunicorn.conf.py /opt/speech-fleet/gunicorn.conf.py

# The root filesystem may be read-only: no bytecode written at run time (compiled above),
# gunicorn's heartbeat files and the Prometheus multiprocess files go to mounted /tmp dirs.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_BIND=0.0.0.0:8000

USER 10001:10001
WORKDIR /opt/speech-fleet
EXPOSE 8000
# Exec form: gunicorn is PID 1 and receives SIGTERM itself; it forwards it to every worker,
# and each worker drains (gateway/worker.py, DrainingServer) before it exits.
ENTRYPOINT ["gunicorn", "-c", "/opt/speech-fleet/gunicorn.conf.py"]
CMD ["gateway.main:create_app_from_env()"]
