"""Prometheus metrics of the gateway. Updated per session event, never per audio frame."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SESSIONS_ACTIVE = Gauge("gateway_sessions_active", "Sessions streaming on this process")
SESSIONS_STARTED = Counter("gateway_sessions_started_total", "Sessions started on this process")
SESSIONS_ENDED = Counter(
    "gateway_sessions_ended_total", "Sessions ended on this process, by outcome", ["outcome"]
)
SESSION_ERRORS = Counter(
    "gateway_session_errors_total", "Error events sent to clients, by code", ["code"]
)
SESSIONS_RESUMED = Counter("gateway_sessions_resumed_total", "Sessions resumed on this process")
FINALS = Counter("gateway_finals_total", "Final transcripts sent to clients")
AUDIO_SECONDS = Counter(
    "gateway_audio_seconds_total", "Seconds of audio received, counted when a connection ends"
)
SESSIONS_REFUSED = Counter(
    "gateway_sessions_refused_total",
    "Connections refused by admission control after the upgrade (saturated or draining)",
)
