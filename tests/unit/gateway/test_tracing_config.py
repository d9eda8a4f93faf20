"""Which span exporter the standard OTEL_* variables select (off unless configured)."""

from __future__ import annotations

import pytest

from gateway.observability.tracing import exporter_name, grpc_metadata


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, "none"),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, "none"),
    ],
)
def test_exporter_follows_the_standard_variables(env: dict[str, str], expected: str) -> None:
    assert exporter_name(env) == expected


def test_without_a_current_span_the_metadata_is_unchanged() -> None:
    assert grpc_metadata(()) is None
    assert grpc_metadata((("function-id", "x"),)) == (("function-id", "x"),)
