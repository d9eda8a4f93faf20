"""The speech server's Prometheus metrics, served on their own port (`--metrics-port`).

Updated per stream (start, end) and per rejected call; decoding time is summed in a
local float per stream and exported when the stream ends.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

STREAMS_ACTIVE = Gauge("asr_streams_active", "Recognition streams and batch calls in flight")
STREAMS_LIMIT = Gauge("asr_streams_limit", "Streams this server takes before RESOURCE_EXHAUSTED")
STREAMS = Counter("asr_streams_total", "Streams ended, by outcome", ["outcome"])
ERRORS = Counter("asr_errors_total", "Calls that ended in a gRPC error, by code", ["code"])
AUDIO = Counter("asr_audio_seconds_total", "Seconds of audio received by ended streams")
DECODE = Counter(
    "asr_decode_seconds_total", "Wall seconds spent in the engine (decoding) by ended streams"
)
REAL_TIME_FACTOR = Histogram(
    "asr_decode_real_time_factor",
    "Per stream: seconds spent decoding per second of audio (above 1: slower than real time)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0),
)

OUTCOMES = ("ok", "invalid", "error", "cancelled")


def serve_metrics(host: str, port: int) -> None:
    """Start the metrics HTTP server (a daemon thread) on `host:port`."""
    for outcome in OUTCOMES:
        STREAMS.labels(outcome)
    for code in ("RESOURCE_EXHAUSTED", "INVALID_ARGUMENT", "INTERNAL"):
        ERRORS.labels(code)
    start_http_server(port, addr=host)


def stream_ended(outcome: str, audio_s: float, decode_s: float) -> None:
    STREAMS.labels(outcome).inc()
    AUDIO.inc(audio_s)
    DECODE.inc(decode_s)
    if audio_s > 0:
        REAL_TIME_FACTOR.observe(decode_s / audio_s)
