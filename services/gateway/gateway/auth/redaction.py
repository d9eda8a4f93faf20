"""Credentials never reach a log line: the server's own lines name each request's path
with its query string, where a browser's `?access_token=` travels.

The gunicorn worker puts `RedactSecrets` (observability/logs.py, the one list of what
counts as a credential) on the handlers of its loggers; this puts it on the servers'
loggers themselves, so that it holds however the app is served (plain uvicorn, tests).
"""

from __future__ import annotations

import logging

from gateway.observability.logs import RedactSecrets

# The servers' loggers that print request paths (uvicorn's WebSocket lines go to
# "uvicorn.error", its HTTP lines to "uvicorn.access").
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def install() -> None:
    """Once per process (repeat calls add nothing)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
