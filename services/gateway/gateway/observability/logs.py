"""Structured logs: one JSON object per line, with the pod, and the session id and trace
id of the session being served (taken from the task's context, so every line logged
while serving a session carries them).

Sessions log one line per transition (`session_log`: started, resumed, ended, taken
over, failover, draining), never per frame, and never audio or transcript text.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

# The session this task serves (child tasks inherit it).
current_session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_session_id", default=None
)

sessions_log = logging.getLogger("gateway.sessions.events")

# LogRecord's own attributes: everything else on a record is an `extra` field.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "pod", "session_id", "trace_id", ...}`."""

    def __init__(self, pod: str | None = None) -> None:
        super().__init__()
        self._pod = pod if pod is not None else os.environ.get("SERVER__POD_NAME", "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pod": self._pod,
            "pid": record.process,
        }
        session_id = current_session_id.get()
        if session_id is not None:
            entry["session_id"] = session_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def session_log(event: str, **fields: str | int | float | None) -> None:
    """One line for a session transition (the session id comes from the context)."""
    sessions_log.info(event, extra={"event": event, **fields})


# Credentials a client may put where a log line can see them: the query string of a
# request line (`?access_token=`), an `Authorization` value, the `bearer.<token>` and
# `realtime-token.<secret>` sub-protocols, a `resume_token` field.
_SECRETS = re.compile(
    r"(?P<key>(?:access_token|token|api_key|apikey|key|client_secret|resume_token)"
    r"[\"']?\s*[=:]\s*[\"']?)[^&\s\"',;]+"
    r"|(?P<scheme>\b(?:bearer|basic)[ .]|realtime-token\.)[^\s\"',;]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every credential it carries replaced by `[redacted]`."""
    return _SECRETS.sub(lambda m: (m["key"] or m["scheme"]) + "[redacted]", text)


class RedactSecrets(logging.Filter):
    """A handler filter: no credential reaches a log line (uvicorn logs each WebSocket's
    path with its query string). Per log line, never per frame."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_handlers(*loggers: logging.Logger) -> None:
    """Put `RedactSecrets` on every handler of `loggers` (once)."""
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())


# The servers' loggers that print request paths (uvicorn's WebSocket lines go to
# "uvicorn.error", its HTTP lines to "uvicorn.access").
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def redact_server_loggers() -> None:
    """Put `RedactSecrets` on the servers' loggers themselves (once), so that it holds
    however the app is served (plain uvicorn, tests); the gunicorn worker also puts it on
    its handlers (`redact_handlers`)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
