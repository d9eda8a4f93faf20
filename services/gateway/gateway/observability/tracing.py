"""OpenTelemetry traces: one span per session connection, child spans for its backend
streams and its Redis work, events for resume, failover, takeover and drain. The W3C
trace context goes to the speech server in gRPC metadata.

Off unless configured (`configure_from_env`); while off, the API's no-op tracer makes
every call here a few attribute lookups. Nothing here runs per audio frame.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from gateway.observability.logs import current_session_id, session_log

tracer = trace.get_tracer("gateway")

# The session span of the connection this task serves (child tasks inherit it).
_session_span: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "session_span", default=None
)
# Sessions being served on this process, for events raised from outside their task.
_live: dict[str, Span] = {}


def exporter_name(env: Mapping[str, str]) -> str:
    """What `OTEL_TRACES_EXPORTER` asks for; without it, OTLP only if an endpoint is set."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return "none"
    name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if name:
        return name
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint else "none"


def configure_from_env(service_name: str, instance: str = "") -> bool:
    """Install a tracer provider exporting as the standard `OTEL_*` variables say
    (OTLP over HTTP, or `console`); False (nothing installed) when they say nothing."""
    name = exporter_name(os.environ)
    if name == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if name == "console":
        exporter = ConsoleSpanExporter()
    elif name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")
    attributes: dict[str, Any] = {"service.name": service_name}
    if instance:
        attributes["service.instance.id"] = instance
    # Resource.create lets OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override these.
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


class SessionTrace:
    """The span of one session connection and the context token that made it current."""

    __slots__ = ("id_token", "session_id", "span", "token")

    def __init__(
        self,
        session_id: str,
        span: Span,
        token: contextvars.Token[Context],
        id_token: contextvars.Token[str | None],
    ) -> None:
        self.session_id = session_id
        self.span = span
        self.token = token
        self.id_token = id_token


class EndedSession(Protocol):
    epoch: int
    session_start_ms: int

    @property
    def audio_ms(self) -> int: ...


def start_session(session_id: str, pod: str = "") -> SessionTrace:
    """Start the session span and make it current for this task and the tasks it starts."""
    span = tracer.start_span("session", attributes={"session.id": session_id, "gateway.pod": pod})
    token = context.attach(trace.set_span_in_context(span))
    _session_span.set(span)
    _live[session_id] = span
    return SessionTrace(session_id, span, token, current_session_id.set(session_id))


def end_session(handle: SessionTrace, session: EndedSession | None, outcome: str) -> None:
    span = handle.span
    resumes = session.epoch - 1 if session is not None else None
    audio_s = (session.audio_ms - session.session_start_ms) / 1000 if session else 0.0
    if session is not None:
        # No line for a socket that never started a session (it has nothing to say).
        session_log("session.ended", outcome=outcome, resume_count=resumes, audio_seconds=audio_s)
    if span.is_recording():
        span.set_attribute("session.outcome", outcome)
        if session is not None:
            span.set_attribute("session.resume_count", session.epoch - 1)
            span.set_attribute("session.audio_seconds", audio_s)
        if outcome not in ("stopped", "client_gone", "moved", "session_taken_over"):
            span.set_status(Status(StatusCode.ERROR, outcome))
    if _live.get(handle.session_id) is span:
        del _live[handle.session_id]
    _session_span.set(None)
    current_session_id.reset(handle.id_token)
    context.detach(handle.token)
    span.end()


def session_event(name: str, **attributes: str | int | float) -> None:
    """An event on the current session's span (resume, failover, takeover)."""
    span = _session_span.get()
    if span is not None:
        span.add_event(name, attributes)


def sessions_event(name: str, session_ids: Sequence[str]) -> None:
    """An event on each named session's span, from outside their tasks (drain)."""
    for session_id in session_ids:
        span = _live.get(session_id)
        if span is not None:
            span.add_event(name)
        token = current_session_id.set(session_id)
        session_log(f"session.{name}")
        current_session_id.reset(token)


class StreamTrace:
    __slots__ = ("span", "token")

    def __init__(self, span: Span, token: contextvars.Token[Context]) -> None:
        self.span = span
        self.token = token


def start_backend_stream() -> StreamTrace:
    """A child span for the backend stream about to open, current while it runs (so its
    context is what `grpc_metadata` sends)."""
    span = tracer.start_span("backend.stream", kind=trace.SpanKind.CLIENT)
    return StreamTrace(span, context.attach(trace.set_span_in_context(span)))


def end_backend_stream(handle: StreamTrace, target: str, error: str = "") -> None:
    span = handle.span
    if span.is_recording():
        span.set_attribute("rpc.system", "grpc")
        span.set_attribute("server.address", target)
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
    context.detach(handle.token)
    span.end()


def grpc_metadata(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...] | None:
    """`metadata` plus the current W3C trace context (`traceparent`), if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    combined = metadata + tuple(carrier.items())
    return combined or None


def child_span(name: str) -> Span | None:
    """A span for some work inside a traced session (a Redis call), not made current;
    None outside one, so that the pod's housekeeping starts no traces of its own."""
    if not trace.get_current_span().is_recording():
        return None
    return tracer.start_span(name)
