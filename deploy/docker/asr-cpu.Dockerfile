# syntax=docker/dockerfile:1
# The CPU speech server image: Riva's gRPC ASR API on PocketSphinx (or the synthetic engine),
# for clusters and Compose set-ups without a GPU. Build from the repository root:
#     docker build -f deploy/docker/asr-cpu.Dockerfile -t speech-asr-cpu .
#
# Base: the official python image by exact tag and index digest (docker-library/repo-info,
# repos/python/remote/3.11.16-slim-bookworm.md, 2026-09-01). Bump both together.

# --- build: a virtual environment with the server, pinned by constraints.txt
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# PocketSphinx, numpy, soxr and grpcio come as manylinux wheels (the PocketSphinx wheel
# carries its English model); --only-binary makes a dependency without a wheel fail the
# build instead of compiling, so no compiler is installed.
COPY constraints.txt ./
COPY services/asr-cpu/ services/asr-cpu/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: -c constraints.txt ./services/asr-cpu \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime: no compilers, no pip cache, a non-root numeric user, read-only friendly
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

LABEL org.opencontainers.image.title="speech-asr-cpu" \
      org.opencontainers.image.description="A CPU speech server speaking Riva's gRPC ASR API"

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ASR_HOST=0.0.0.0 \
    ASR_PORT=50051

USER 10001:10001
EXPOSE 50051
# gRPC health (grpc.health.v1) on the same port: Kubernetes' grpc probes use it.
ENTRYPOINT ["asr-cpu"]
