"""gunicorn settings for the gateway: `gunicorn -c services/gateway/gunicorn.conf.py
--bind HOST:PORT 'gateway.main:create_app_from_env()'`."""

import os

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
# gunicorn's control socket defaults to one path per user, shared by every gateway.
control_socket_disable = True
