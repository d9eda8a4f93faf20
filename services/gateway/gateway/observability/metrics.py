"""Every Prometheus metric of the gateway, in one naming scheme: `gateway_<what>_<unit>`,
counters ending in `_total`, durations in `_seconds`, sizes in `_bytes`.

Nothing here is updated per audio frame: per-frame figures are plain integers on each
`LiveSession`, folded in by the housekeeping tick (`fold.SessionFolder`). Under gunicorn
the values live in `PROMETHEUS_MULTIPROC_DIR` (one file per worker) and `/metrics` adds
the workers up: gauges say how (`livesum`: dead workers drop out).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

# From 1 ms to 10 s: the latency targets sit in the tens of milliseconds, a stalled
# backend or Redis in seconds.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# ---- sessions --------------------------------------------------------------------------

SESSIONS_ACTIVE = Gauge(
    "gateway_sessions_active",
    "Sessions streaming on this pod",
    multiprocess_mode="livesum",
)
SESSIONS_CAPACITY = Gauge(
    "gateway_sessions_capacity",
    "Sessions this pod takes before it refuses new ones (per worker, summed)",
    multiprocess_mode="livesum",
)
SESSIONS_STARTED = Counter("gateway_sessions_started_total", "Sessions started")
SESSIONS_ENDED = Counter(
    "gateway_sessions_ended_total", "Connections of sessions ended, by outcome", ["outcome"]
)
SESSIONS_RESUMED = Counter("gateway_sessions_resumed_total", "Sessions resumed on this pod")
SESSIONS_TAKEN_OVER = Counter(
    "gateway_sessions_taken_over_total",
    "Connections stopped because another connection resumed their session",
)
REJECTION_REASONS = ("capacity", "rate", "quota", "auth", "origin", "draining")
SESSIONS_REJECTED = Counter(
    "gateway_sessions_rejected_total", "New sessions or sockets refused, by reason", ["reason"]
)
SESSION_ERRORS = Counter(
    "gateway_session_errors_total", "Error events sent to clients, by code", ["code"]
)
FINALS = Counter("gateway_finals_total", "Final transcripts sent to clients")
# Malformed input refused at the edge, counted rather than logged per occurrence (a client
# must not be able to flood the logs); messages that parse but break the protocol are in
# SESSION_ERRORS by code.
BAD_INPUT_REASONS = ("invalid_utf8", "bad_frame", "bad_session_id", "bad_request")
BAD_INPUT = Counter(
    "gateway_bad_input_total", "Malformed client input refused at the edge, by reason", ["reason"]
)

# ---- traffic ---------------------------------------------------------------------------

AUDIO_RECEIVED = Counter(
    "gateway_audio_received_seconds_total", "Seconds of audio received from clients"
)
WS_RECEIVED_MESSAGES = Counter(
    "gateway_ws_received_messages_total", "WebSocket messages received (audio and control)"
)
WS_RECEIVED_BYTES = Counter("gateway_ws_received_bytes_total", "Audio bytes received")
WS_SENT_MESSAGES = Counter("gateway_ws_sent_messages_total", "Transcript messages sent")
WS_SENT_BYTES = Counter("gateway_ws_sent_bytes_total", "Bytes of transcript messages sent")

# ---- latency ---------------------------------------------------------------------------

FINAL_LATENCY = Histogram(
    "gateway_final_latency_seconds",
    "From the arrival of the audio that ends an utterance to its final being sent",
    buckets=LATENCY_BUCKETS,
)
FIRST_INTERIM_LATENCY = Histogram(
    "gateway_first_interim_latency_seconds",
    "From a connection's start to its first transcript being sent",
    buckets=LATENCY_BUCKETS,
)
ADDED_LATENCY = Histogram(
    "gateway_added_latency_seconds",
    "The gateway's own time per result: backend response in to client send out "
    "(finals: including their write to Redis)",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)

# ---- speech backend --------------------------------------------------------------------

BACKEND_STREAMS = Gauge(
    "gateway_backend_streams",
    "Backend streams open, by endpoint",
    ["endpoint"],
    multiprocess_mode="livesum",
)
BACKEND_STREAM_ERRORS = Counter(
    "gateway_backend_stream_errors_total", "Backend streams that failed, by gRPC code", ["code"]
)
BACKEND_FAILOVERS = Counter(
    "gateway_backend_failovers_total",
    "Backend streams replayed into a new stream on another endpoint after a failure",
)
BACKEND_ENDPOINT_HEALTHY = Gauge(
    "gateway_backend_endpoint_healthy",
    "1 when the balancer places streams on the endpoint (not cooling down after a failure)",
    ["endpoint"],
    multiprocess_mode="livemin",
)
BACKEND_ENDPOINT_UP = Gauge(
    "gateway_backend_endpoint_up",
    "1 when the endpoint answered its last gRPC health check with SERVING",
    ["endpoint"],
    multiprocess_mode="livemax",
)

# ---- Redis -----------------------------------------------------------------------------

REDIS_OP_DURATION = Histogram(
    "gateway_redis_op_duration_seconds",
    "Redis operations (one round trip each), by operation",
    ["op"],
    buckets=LATENCY_BUCKETS,
)
REDIS_ERRORS = Counter(
    "gateway_redis_errors_total", "Redis operations that failed, by kind of error", ["kind"]
)
REDIS_PENDING_FINALS = Gauge(
    "gateway_redis_pending_finals",
    "Finals sent to clients but not yet written to Redis",
    multiprocess_mode="livesum",
)

# ---- the pod ---------------------------------------------------------------------------

DRAINING = Gauge(
    "gateway_draining",
    "1 while the pod drains (takes no new sessions)",
    multiprocess_mode="livemax",
)
EVENT_LOOP_LAG = Gauge(
    "gateway_event_loop_lag_seconds",
    "How late the housekeeping tick woke up, last tick (worst worker of the pod)",
    multiprocess_mode="livemax",
)
WORKER_STARTS = Counter(
    "gateway_worker_starts_total", "Gateway worker processes started (restarts included)"
)


# Label values created at zero at start-up, so that every series a dashboard or alert
# reads exists (under gunicorn a series nobody touched is not exported at all).
SESSION_OUTCOMES = ("stopped", "client_gone", "moved")
BACKEND_ERROR_CODES = (
    "UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN",
    "CANCELLED", "INVALID_ARGUMENT",
)  # fmt: skip
REDIS_ERROR_KINDS = (
    "timeout", "connection", "readonly", "oom", "loading", "response", "other", "client",
)  # fmt: skip


def init_labels(error_codes: Iterable[str]) -> None:
    """Create the labelled series a dashboard or alert expects to see at zero."""
    codes = list(error_codes)
    for reason in REJECTION_REASONS:
        SESSIONS_REJECTED.labels(reason)
    for reason in BAD_INPUT_REASONS:
        BAD_INPUT.labels(reason)
    for kind in ("interim", "final"):
        ADDED_LATENCY.labels(kind)
    for code in codes:
        SESSION_ERRORS.labels(code)
    for outcome in (*SESSION_OUTCOMES, *codes):
        SESSIONS_ENDED.labels(outcome)
    for code in BACKEND_ERROR_CODES:
        BACKEND_STREAM_ERRORS.labels(code)
    for kind in REDIS_ERROR_KINDS:
        REDIS_ERRORS.labels(kind)
