"""OpenTelemetry traces of the speech server: one span per stream, continuing the trace
whose W3C context (`traceparent`) the caller sent in gRPC metadata. Off unless the
standard `OTEL_*` variables configure an exporter (as in the gateway)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Status, StatusCode

tracer = trace.get_tracer("asr_cpu")


def exporter_name(env: Mapping[str, str]) -> str:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return "none"
    name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if name:
        return name
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint else "none"


def configure_from_env(service_name: str = "asr-cpu") -> bool:
    """Install a tracer provider if `OTEL_*` asks for one (OTLP over HTTP or console)."""
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
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def start_stream_span(context: grpc.aio.ServicerContext[Any, Any]) -> Span:
    """The stream's span, a child of the caller's span when it sent a trace context."""
    carrier = {key: value for key, value in (context.invocation_metadata() or ())}
    parent = propagate.extract(carrier)
    return tracer.start_span("asr.stream", context=parent, kind=trace.SpanKind.SERVER)


def end_stream_span(span: Span, outcome: str, audio_s: float, finals: int) -> None:
    """Record how the stream went (the caller ends the span)."""
    if span.is_recording():
        span.set_attribute("asr.outcome", outcome)
        span.set_attribute("asr.audio_seconds", audio_s)
        span.set_attribute("asr.finals", finals)
        if outcome not in ("ok", "cancelled"):
            span.set_status(Status(StatusCode.ERROR, outcome))
