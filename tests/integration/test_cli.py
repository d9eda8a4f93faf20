"""`speech-client transcribe` against a real gateway and speech server: SRT and WebVTT
cues timed by the words the server sent, and `--resume` of an interrupted session."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
import webvtt

from speech_client import Audio, AudioFormat, Transcript, Transcription
from speech_client.cli import parse_args, run_transcribe
from tests.support.audio import GOFORWARD, librivox_clips, silence
from tests.support.browser import write_wav
from tests.support.fixtures_gateway import start_gateway
from tests.support.microphone import StandInMicrophone
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


async def cli(url: str, *options: str, file: Path = GOFORWARD) -> str:
    out, err = io.StringIO(), io.StringIO()
    args = parse_args(["transcribe", str(file), "--url", url, "--speed", "0", *options])
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


def finals_of(json_lines: str) -> list[tuple[int, str]]:
    events = [json.loads(line) for line in json_lines.splitlines()]
    return [(e["seq"], e["alternatives"][0]["transcript"]) for e in events if "seq" in e]


async def test_resume_by_session_id_and_token(url: str, tmp_path: Path) -> None:
    """A client that died after two finals: the CLI, given the session's id and resume
    token, prints the whole transcript, the same as an uninterrupted run's."""
    pcm = silence(500).join(pcm for _, pcm, _ in librivox_clips())
    wav = write_wav(tmp_path / "librivox.wav", pcm)
    uninterrupted = finals_of(await cli(url, "--format", "json", file=wav))
    assert len(uninterrupted) >= 4

    session_id = f"cli-resume-{tmp_path.name[-8:]}".replace(".", "-")
    audio = Audio(pcm, AudioFormat("pcm16", 16000, 1))
    first: list[Transcript] = []
    async with Transcription(
        url, audio.frames(100), audio.format, session_id=session_id, speed=0
    ) as session:
        async for event in session:
            if isinstance(event, Transcript) and event.is_final:
                first.append(event)
                if len(first) == 2:
                    break  # the client goes away mid-session
    token = session.resume_token
    assert token

    resumed = await cli(url, "--format", "json", "--session-id", session_id, "--resume", token,
                        file=wav)  # fmt: skip
    assert finals_of(resumed) == uninterrupted
    # Once stopped, the session can still be fetched whole, from any final on.
    again = await cli(url, "--format", "json", "--session-id", session_id, "--resume", token,
                      "--last-seq", "2", file=wav)  # fmt: skip
    assert finals_of(again) == uninterrupted[2:]


async def test_microphone_streams_until_duration(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--mic --duration`: the microphone (PortAudio stood in for: no device here) plays
    goforward; the CLI stops it after the duration and prints the final."""

    class GoForwardMicrophone(StandInMicrophone):
        audio = GOFORWARD.read_bytes()
        block_interval_s = 0.02  # 100 ms blocks at 5x real time

    monkeypatch.setattr("speech_client.cli.Microphone", GoForwardMicrophone)
    out, err = io.StringIO(), io.StringIO()
    args = parse_args(["transcribe", "--mic", "--duration", "1.5", "--url", url, "--json"])
    assert await run_transcribe(args, out, err) == 0, err.getvalue()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["alternatives"][0]["transcript"] for e in events if "seq" in e] == [
        "go forward ten meters"
    ]
    assert events[-1]["event"] == "transcription_stopped"
    assert events[-1]["audio_ms"] >= 2786  # all of the speech, then silence until the stop
