"""Riva results become `transcript` events that validate against the protocol model."""

from __future__ import annotations

from riva.client.proto import riva_asr_pb2 as asr

from gateway.protocol import TranscriptEvent
from gateway.sessions.results import transcript_event


def _result(
    is_final: bool, processed: float, words: bool = False
) -> asr.StreamingRecognitionResult:
    alt = asr.SpeechRecognitionAlternative(transcript="go forward", confidence=0.9)
    if words:
        alt.words.append(asr.WordInfo(word="go", start_time=300, end_time=500, confidence=0.8))
        alt.words.append(asr.WordInfo(word="forward", start_time=500, end_time=900, confidence=0.7))
    return asr.StreamingRecognitionResult(
        alternatives=[alt], is_final=is_final, stability=0.5, audio_processed=processed
    )


def test_offsets_are_shifted_by_the_stream_base() -> None:
    event = transcript_event(
        _result(True, 1.25), seq=3, base_ms=10_000, utterance_start_ms=10_000, with_words=False
    )
    TranscriptEvent.model_validate(event)
    assert event["seq"] == 3
    assert event["is_final"] is True
    assert event["start_ms"] == 10_000
    assert event["end_ms"] == 11_250
    assert "words" not in event["alternatives"][0]


def test_words_carry_session_offsets_and_set_the_start() -> None:
    event = transcript_event(
        _result(False, 1.0, words=True),
        seq=1,
        base_ms=2_000,
        utterance_start_ms=2_000,
        with_words=True,
    )
    TranscriptEvent.model_validate(event)
    words = event["alternatives"][0]["words"]
    assert [w["word"] for w in words] == ["go", "forward"]
    assert words[0]["start_ms"] == 2_300
    assert words[1]["end_ms"] == 2_900
    assert event["start_ms"] == 2_300
    assert event["end_ms"] == 3_000
