"""`speech-client loadtest` as users run it: the real CLI against a real gateway (behind
NGINX) on the synthetic engine, with Redis. The report is the contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.fixtures_fleet import NginxFactory
from tests.support.fixtures_gateway import GatewayFactory
from tests.support.processes import REPO, Proc

pytestmark = pytest.mark.integration

SESSIONS = 10
AUDIO_S = 4  # the synthetic engine makes a final every 2 s of audio


def test_loadtest_reports_every_session_with_latencies(
    redis_url: str,
    asr_synthetic_server: Proc,
    gateway_factory: GatewayFactory,
    nginx_factory: NginxFactory,
) -> None:
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_synthetic_server.port}"
    )
    nginx = nginx_factory([gateway.port])
    argv = [
        sys.executable, "-m", "speech_client", "loadtest",
        "--url", f"ws://127.0.0.1:{nginx.port}",
        "--sessions", str(SESSIONS), "--ramp-up", "1", "--duration", str(AUDIO_S),
        "--generate", "noise", "--json",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=REPO)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # one JSON object and nothing else
    assert report["sessions"] == {"requested": SESSIONS, "ok": SESSIONS, "failed": 0}
    finals = report["finals"]
    assert finals["received"] == finals["reported"] == SESSIONS * AUDIO_S // 2
    assert finals["sessions_mismatched"] == finals["without_latency"] == 0
    assert report["close_codes"] == {"1000": SESSIONS}
    assert report["error_codes"] == {}
    latency = report["latency_ms"]
    assert latency["final"]["count"] == SESSIONS * AUDIO_S // 2
    assert latency["first_interim"]["count"] == SESSIONS
    for name in ("started", "first_interim", "final"):
        row = latency[name]
        assert 0 < row["p50"] <= row["p90"] <= row["p99"] <= row["max"], (name, row)
    # Paced in real time: a final cannot come before its audio, nor (on loopback) late.
    assert latency["final"]["max"] < 2000
    assert report["loadgen"]["cpu_s"] > 0
