"""The client against the stand-in test peer (standin_peer.py), over a real socket."""

from __future__ import annotations

import pytest

from speech_client.audio import Audio, AudioFormat
from speech_client.client import ClientOptions, Transcription
from speech_client.errors import TranscriptionError
from speech_client.events import (
    AudioCommitted,
    Reconnect,
    Transcript,
    TranscriptionResumed,
    TranscriptionStarted,
    TranscriptionStopped,
)
from speech_client.simple import transcribe, transcribe_all

from .standin_peer import BYTES_PER_FINAL, StandInPeer, counting_audio, running

AUDIO = Audio(counting_audio(1000), AudioFormat())  # 1 s: 10 finals at the stand-in
EXPECTED = " ".join(f"w{i * 1600}" for i in range(10))
FAST = ClientOptions(backoff_base_s=0.01, error_close_timeout_s=1.0)


async def test_streams_audio_and_yields_events_in_order() -> None:
    async with running(StandInPeer()) as peer:
        session = transcribe(peer.url, AUDIO, session_id="abcdefgh", speed=0, options=FAST)
        async with session:
            events = [event async for event in session]
    assert isinstance(events[0], TranscriptionStarted)
    assert isinstance(events[-1], TranscriptionStopped)
    assert events[-1].audio_ms == 1000
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert " ".join(f.text for f in finals) == EXPECTED
    assert any(isinstance(e, AudioCommitted) for e in events)
    assert peer.paths == ["/api/v1/transcribe/abcdefgh"]
    assert peer.hellos[0]["config"]["encoding"] == "pcm16"
    assert peer.hellos[0]["config"]["sample_rate_hz"] == 16000
    assert bytes(peer.audio) == AUDIO.data
    # Everything sent was committed, so nothing is left to replay.
    assert session.replay.size == 0
    assert session.last_seq == 10


async def test_resumes_after_a_dropped_connection_with_the_same_transcript() -> None:
    peer = StandInPeer(drop_at_bytes=5 * BYTES_PER_FINAL + 100)
    async with running(peer):
        result = await transcribe_all(peer.url, AUDIO, speed=0, options=FAST)
    assert result.text == EXPECTED
    assert [f.seq for f in result.finals] == list(range(1, 11))
    assert result.reconnects == 1
    assert peer.hellos[1] == {"type": "resume_transcription", "resume_token": "token-1",
                              "last_seq": 5}  # fmt: skip
    assert bytes(peer.audio) == AUDIO.data


async def test_duplicate_finals_replayed_on_resume_are_dropped() -> None:
    peer = StandInPeer(drop_at_bytes=3 * BYTES_PER_FINAL + 10, replay_all_finals=True)
    async with running(peer):
        result = await transcribe_all(peer.url, AUDIO, speed=0, options=FAST)
    assert [f.seq for f in result.finals] == list(range(1, 11))
    assert result.text == EXPECTED


async def test_reconnect_event_moves_the_session_with_the_new_token() -> None:
    peer = StandInPeer(reconnect_at_bytes=4 * BYTES_PER_FINAL)
    async with running(peer):
        session = Transcription(peer.url, AUDIO.frames(100), AUDIO.format, speed=0, options=FAST)
        async with session:
            events = [event async for event in session]
    assert any(isinstance(e, Reconnect) for e in events)
    assert any(isinstance(e, TranscriptionResumed) for e in events)
    assert peer.hellos[1]["resume_token"] == "token-2"
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert " ".join(f.text for f in finals) == EXPECTED


async def test_error_event_raises_with_code_and_close_code() -> None:
    error = {"code": "audio_too_fast", "message": "slow down", "retryable": False}
    peer = StandInPeer(error_at_bytes=BYTES_PER_FINAL, error=error, error_close_code=1008)
    async with running(peer):
        with pytest.raises(TranscriptionError) as caught:
            await transcribe_all(peer.url, AUDIO, speed=0, options=FAST)
    e = caught.value
    assert (e.code, e.message, e.retryable, e.close_code) == ("audio_too_fast", "slow down",
                                                              False, 1008)  # fmt: skip


async def test_dropped_connection_raises_when_resume_is_off() -> None:
    peer = StandInPeer(drop_at_bytes=2 * BYTES_PER_FINAL)
    async with running(peer):
        with pytest.raises(TranscriptionError) as caught:
            await transcribe_all(peer.url, AUDIO, speed=0, options=ClientOptions(resume=False))
    assert caught.value.close_code == 1006
    assert caught.value.retryable


async def test_unreachable_server_fails_at_once_before_the_session_started() -> None:
    options = ClientOptions(max_reconnect_attempts=2, backoff_base_s=0.01, open_timeout_s=1)
    async with running(StandInPeer()) as peer:
        url = peer.url  # a port that was free a moment ago: closed once we leave
    with pytest.raises(TranscriptionError) as caught:
        await transcribe_all(url, AUDIO, speed=0, options=options)
    assert caught.value.code == "connect_failed"


async def test_leaving_early_closes_the_session_without_leaking_tasks() -> None:
    async with running(StandInPeer()) as peer:
        session = transcribe(peer.url, AUDIO, speed=1.0)
        async with session:
            async for event in session:
                if isinstance(event, TranscriptionStarted):
                    break
        assert session._task is not None
        assert session._task.done()
