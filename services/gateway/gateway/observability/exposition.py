"""The pod's metrics in Prometheus text format, all workers added up under gunicorn.

Served by the admin listener (gateway/admin/server.py, in the gunicorn master), not by
the workers' public app. No FastAPI here: the master imports this.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.observability.multiprocess import ENV


def metrics_registry() -> CollectorRegistry:
    """Under gunicorn (multiprocess mode) a registry that reads every worker's files;
    in a single process (uvicorn alone, tests) the default registry."""
    if not os.environ.get(ENV):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render_metrics() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    return generate_latest(metrics_registry()), CONTENT_TYPE_LATEST
