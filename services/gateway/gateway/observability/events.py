"""One-line metric hooks for the session core's event points (never per audio frame)."""

from __future__ import annotations

import grpc
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from gateway.errors import SessionError
from gateway.observability import metrics, tracing
from gateway.observability.logs import session_log
from gateway.protocol import ErrorCode


def rejected(reason: str) -> None:
    """A new session or socket was refused; `reason` is one of REJECTION_REASONS."""
    metrics.SESSIONS_REJECTED.labels(reason).inc()


def bad_input(reason: str) -> None:
    """Malformed input refused at the edge; `reason` is one of BAD_INPUT_REASONS."""
    metrics.BAD_INPUT.labels(reason).inc()


def session_failed(error: SessionError) -> None:
    """A session's connection ends with `error` (sent to the client, or silent)."""
    if error.notify:
        metrics.SESSION_ERRORS.labels(error.code.value).inc()
    if error.code is ErrorCode.SESSION_TAKEN_OVER:
        metrics.SESSIONS_TAKEN_OVER.inc()
        tracing.session_event("takeover")
        session_log("session.taken_over")


def backend_stream_failed(code: grpc.StatusCode) -> None:
    """The current backend stream failed (its span is the current one)."""
    metrics.BACKEND_STREAM_ERRORS.labels(code.name).inc()
    trace.get_current_span().set_status(Status(StatusCode.ERROR, code.name))


def backend_failover() -> None:
    metrics.BACKEND_FAILOVERS.inc()
    tracing.session_event("failover")
    session_log("session.failover")


def session_started() -> None:
    session_log("session.started")


def session_resumed(epoch: int) -> None:
    tracing.session_event("resume", epoch=epoch)
    session_log("session.resumed", epoch=epoch)
