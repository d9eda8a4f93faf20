"""Latency and errors of every Redis operation, timed at the store's one call site
(`SessionStore._call`)."""

from __future__ import annotations

import time
from types import TracebackType

from opentelemetry.trace import Span, Status, StatusCode
from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.observability import metrics
from gateway.observability.tracing import child_span


def error_kind(exc: BaseException) -> str:
    """A short, bounded label for what went wrong."""
    if isinstance(exc, BusyLoadingError):  # a ConnectionError, but Redis is there
        return "loading"
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    if isinstance(exc, ReadOnlyError):
        return "readonly"
    if isinstance(exc, OutOfMemoryError):
        return "oom"
    if isinstance(exc, ResponseError):
        # Inside a Lua script Redis keeps the original error's code in the message.
        code = str(exc).split(" ", 1)[0].upper()
        return {"READONLY": "readonly", "OOM": "oom", "LOADING": "loading"}.get(code, "response")
    if isinstance(exc, RedisError):
        return "other"
    return "client"


class RedisOp:
    """`with RedisOp("append_finals"): ...` observes the duration and any error."""

    __slots__ = ("_op", "_span", "_started")

    def __init__(self, op: str) -> None:
        self._op = op
        self._started = 0.0
        self._span: Span | None = None

    def __enter__(self) -> None:
        self._started = time.perf_counter()
        self._span = child_span(f"redis {self._op}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        metrics.REDIS_OP_DURATION.labels(self._op).observe(time.perf_counter() - self._started)
        # Cancellation is the caller giving up, not Redis failing.
        if isinstance(exc, Exception):
            metrics.REDIS_ERRORS.labels(error_kind(exc)).inc()
        if self._span is not None:
            self._span.set_attribute("db.system", "redis")
            if isinstance(exc, Exception):
                self._span.set_status(Status(StatusCode.ERROR, error_kind(exc)))
            self._span.end()
