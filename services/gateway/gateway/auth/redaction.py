"""Credentials never reach a log line: the server's own lines name each request's path
with its query string, where a browser's `?access_token=` travels."""

from __future__ import annotations

import logging
import re

_QUERY_CREDENTIAL = re.compile(r"(access_token=)[^&\s\"']*", re.IGNORECASE)
# The servers' loggers that print request paths (uvicorn's WebSocket lines go to
# "uvicorn.error", its HTTP lines to "uvicorn.access").
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def redact(text: str) -> str:
    return _QUERY_CREDENTIAL.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    """Rewrites a record's message and arguments with every `access_token=` value
    replaced; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "access_token=" in record.msg.lower():
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "access_token=" in a.lower() for a in record.args
        ):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Once per process (repeat calls add nothing)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
