"""The JSON log formatter: pod, the session's id and trace id from the task's context."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from gateway.observability.logs import JsonFormatter, current_session_id


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_a_line_is_one_json_object_with_the_pod_and_extras() -> None:
    line = JsonFormatter(pod="gw-7").format(record("session.ended", outcome="stopped"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "session.ended"
    assert entry["pod"] == "gw-7"
    assert entry["outcome"] == "stopped"
    assert entry["level"] == "info"
    assert "session_id" not in entry
    assert "trace_id" not in entry


def test_the_session_and_trace_come_from_the_context() -> None:
    tracer = TracerProvider().get_tracer("test")
    token = current_session_id.set("sess-0001")
    try:
        with tracer.start_as_current_span("session") as span:
            entry = json.loads(JsonFormatter(pod="gw").format(record("x")))
    finally:
        current_session_id.reset(token)
    assert entry["session_id"] == "sess-0001"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["span_id"] == format(span.get_span_context().span_id, "016x")


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    line = JsonFormatter(pod="").format(rec)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]
