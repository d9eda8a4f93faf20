"""gunicorn settings for the gateway: `gunicorn -c services/gateway/gunicorn.conf.py
--bind HOST:PORT 'gateway.main:create_app_from_env()'`."""

import os
from typing import Any

# Before anything imports prometheus_client: workers fork from this process.
from gateway.admin import hooks as admin
from gateway.observability import multiprocess

multiprocess.use_multiprocess_dir()


# gunicorn's hooks, picked up by name: Prometheus multiprocess files, and the admin
# listener that the master serves for every worker (gateway/admin/hooks.py).
def on_starting(server: Any) -> None:
    multiprocess.on_starting(server)
    admin.on_starting(server)


def when_ready(server: Any) -> None:
    admin.when_ready(server)


def post_fork(server: Any, worker: Any) -> None:
    admin.post_fork(server, worker)


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.child_exit(server, worker)
    admin.child_exit(server, worker)


def on_exit(server: Any) -> None:
    admin.on_exit(server)
    multiprocess.on_exit(server)


worker_class = "gateway.worker.GatewayWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
# Sessions last hours: the worker heartbeat timeout is about a stuck worker, not a request.
timeout = 30
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT_S", "30"))
keepalive = 75
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# The gateway's own log lines (per session event, never per frame) go where gunicorn's go.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # One JSON object per line, with pod, session id and trace id (observability/logs.py).
    "formatters": {"gateway": {"()": "gateway.observability.logs.JsonFormatter"}},
    "handlers": {
        "gateway": {
            "class": "logging.StreamHandler",
            "formatter": "gateway",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": ["gateway"]},
    "loggers": {
        "gateway": {"level": loglevel.upper(), "handlers": ["gateway"], "propagate": False}
    },
}
# gunicorn's control socket defaults to one path per user, shared by every gateway.
control_socket_disable = True
