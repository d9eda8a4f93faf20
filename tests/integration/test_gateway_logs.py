"""The gateway's logs under gunicorn: one JSON line per session transition, with session
id, trace id and pod, and no transcript text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.audio import silence
from tests.support.fixtures_gateway import GatewayFactory
from tests.support.processes import Proc, poll_until
from tests.support.ws import frames, stream_session

pytestmark = pytest.mark.integration


def json_lines(proc: Proc) -> list[dict[str, Any]]:
    entries = []
    for line in proc.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # the console span exporter's indented output
    return entries


async def test_one_json_line_per_transition_with_session_trace_and_pod(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    gateway = gateway_factory(
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        name="gw-logs",
        # Traces on, to the console: the lines then carry the session's trace id.
        env={"OTEL_TRACES_EXPORTER": "console"},
    )
    run = await stream_session(
        f"ws://127.0.0.1:{gateway.port}", "logs-session-0001", frames(silence(4000), 3200)
    )
    assert run.finals
    texts = [t for t in run.final_texts if t.strip()]

    def transitions() -> list[dict[str, Any]]:
        return [
            e
            for e in json_lines(gateway)
            if e.get("logger") == "gateway.sessions.events"
            and e.get("session_id") == "logs-session-0001"
        ]

    poll_until(lambda: len(transitions()) == 2, 10, "the session's log lines")
    started, ended = transitions()
    assert started["event"] == "session.started"
    assert ended["event"] == "session.ended"
    assert ended["outcome"] == "stopped"
    assert ended["audio_seconds"] == pytest.approx(4.0)
    for entry in (started, ended):
        assert entry["pod"] == "gw-logs"
        assert len(entry["trace_id"]) == 32
    assert started["trace_id"] == ended["trace_id"]
    assert texts
    # No transcript text in any JSON log line (the console span dump is not a log line).
    for entry in json_lines(gateway):
        assert not any(text in json.dumps(entry) for text in texts)
