"""gunicorn settings for the gateway: `gunicorn -c services/gateway/gunicorn.conf.py
--bind HOST:PORT 'gateway.main:create_app_from_env()'`."""

import os

# Before anything imports prometheus_client: workers fork from this process.
from gateway.observability.multiprocess import (
    child_exit,
    on_exit,
    on_starting,
    use_multiprocess_dir,
)

use_multiprocess_dir()
__all__ = ["child_exit", "on_exit", "on_starting"]  # gunicorn's hooks, picked up by name

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
