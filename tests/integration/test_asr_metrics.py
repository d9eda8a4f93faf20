"""The CPU speech server's own metrics, on their own port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import silence
from tests.support.fixtures_asr import asr_argv, asr_health_serving
from tests.support.metrics import samples, scrape
from tests.support.processes import Proc, free_port, running
from tests.support.riva_direct import direct_finals
from tests.support.ws import frames

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def asr_with_metrics(log_dir: Path) -> Iterator[Proc]:
    port, metrics_port = free_port(), free_port()
    with running(
        "asr-metrics",
        asr_argv(port, "synthetic", "--metrics-port", str(metrics_port)),
        log_dir,
        port=port,
        ready=lambda: asr_health_serving(port),
    ) as proc:
        proc.extra["metrics_port"] = metrics_port
        yield proc


async def test_a_stream_shows_in_the_speech_servers_metrics(asr_with_metrics: Proc) -> None:
    metrics_port = int(str(asr_with_metrics.extra["metrics_port"]))
    status, text = scrape(metrics_port)
    assert status == 200
    before = samples(text)
    assert before["asr_streams_active"] == 0
    assert before["asr_streams_limit"] == 2000

    finals = await direct_finals(f"127.0.0.1:{asr_with_metrics.port}", frames(silence(4000), 3200))
    assert finals  # the synthetic engine gives a final every 2 s of audio

    after = samples(scrape(metrics_port)[1])
    assert after['asr_streams_total{outcome="ok"}'] == before['asr_streams_total{outcome="ok"}'] + 1
    assert after["asr_audio_seconds_total"] - before["asr_audio_seconds_total"] == pytest.approx(
        4.0
    )
    assert after["asr_decode_real_time_factor_count"] == 1
    assert after["asr_streams_active"] == 0
