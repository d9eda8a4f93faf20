"""One-line metric hooks for the session core's event points (never per audio frame)."""

from __future__ import annotations

import grpc

from gateway.errors import SessionError
from gateway.observability import metrics
from gateway.protocol import ErrorCode


def rejected(reason: str) -> None:
    """A new session or socket was refused; `reason` is one of REJECTION_REASONS."""
    metrics.SESSIONS_REJECTED.labels(reason).inc()


def session_failed(error: SessionError) -> None:
    """A session's connection ends with `error` (sent to the client, or silent)."""
    if error.notify:
        metrics.SESSION_ERRORS.labels(error.code.value).inc()
    elif error.code is ErrorCode.SESSION_EXISTS:
        # Silent and "exists": another connection resumed the session (a takeover).
        metrics.SESSIONS_TAKEN_OVER.inc()


def backend_stream_failed(code: grpc.StatusCode) -> None:
    metrics.BACKEND_STREAM_ERRORS.labels(code.name).inc()


def backend_failover() -> None:
    metrics.BACKEND_FAILOVERS.inc()
