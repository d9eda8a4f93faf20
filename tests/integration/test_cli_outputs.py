"""`speech-client transcribe --format srt|vtt` against a real gateway and speech server:
cues parse with subtitle libraries and are timed by the words the server sent."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
import webvtt

from speech_client.cli import parse_args, run_transcribe
from tests.support.audio import GOFORWARD
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import Proc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[str]:
    gateway = start_gateway(
        log_dir, redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_server.port}", name="gw-cli"
    )
    try:
        yield f"ws://127.0.0.1:{gateway.port}"
    finally:
        gateway.stop()


async def cli(url: str, *options: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    args = parse_args(["transcribe", str(GOFORWARD), "--url", url, "--speed", "0", *options])
    assert await run_transcribe(args, out, err) == 0, err.getvalue()
    assert err.getvalue() == ""  # no progress bar: stderr is not a terminal
    return out.getvalue()


async def test_srt_and_vtt_cues_match_the_word_times(url: str) -> None:
    lines = (await cli(url, "--format", "json", "--word-time-offsets")).splitlines()
    words = json.loads(lines[0])["alternatives"][0]["words"]
    first_ms, last_ms = words[0]["start_ms"], words[-1]["end_ms"]

    cues = list(srt.parse(await cli(url, "--format", "srt")))
    assert [c.content for c in cues] == ["go forward ten meters"]
    assert round(cues[0].start.total_seconds() * 1000) == first_ms
    assert round(cues[0].end.total_seconds() * 1000) == last_ms

    captions = webvtt.from_buffer(io.StringIO(await cli(url, "--format", "vtt")))
    assert [c.text for c in captions] == ["go forward ten meters"]
    assert (captions[0].start_in_seconds, captions[0].end_in_seconds) == (
        first_ms // 1000,
        last_ms // 1000,
    )
    assert captions[0].start == srt.timedelta_to_srt_timestamp(cues[0].start).replace(",", ".")
