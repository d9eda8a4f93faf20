"""`GET /metrics`: the pod's metrics, all workers added up under gunicorn."""

from __future__ import annotations

import os

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from gateway.observability.multiprocess import ENV


def metrics_registry() -> CollectorRegistry:
    """Under gunicorn (multiprocess mode) a registry that reads every worker's files;
    in a single process (uvicorn alone, tests) the default registry."""
    if not os.environ.get(ENV):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics(request: Request) -> Response:
    # A plain function: Starlette runs it in its thread pool, off the event loop,
    # while it reads the workers' files.
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)


def mount_metrics(app: FastAPI) -> None:
    """`/metrics` answers 200 itself (a mounted app would redirect to `/metrics/`)."""
    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
