from __future__ import annotations

import pytest

from speech_client.events import (
    ErrorEvent,
    ProtocolViolation,
    Transcript,
    UnknownEvent,
    Word,
    parse_event,
)


def test_transcript_with_words_parses_and_keeps_the_raw_event() -> None:
    raw = {
        "event": "transcript", "seq": 3, "is_final": True, "channel": 0, "start_ms": 10,
        "end_ms": 900, "stability": 1.0,
        "alternatives": [{"transcript": "go forward", "confidence": 0.8, "words": [
            {"word": "go", "start_ms": 10, "end_ms": 200, "confidence": 0.9, "speaker": 1}]}],
    }  # fmt: skip
    event = parse_event(raw)
    assert isinstance(event, Transcript)
    assert (event.seq, event.is_final, event.text) == (3, True, "go forward")
    assert event.alternatives[0].words == (Word("go", 10, 200, 0.9, 1),)
    assert event.raw is raw


def test_error_with_retry_after() -> None:
    event = parse_event({"event": "error", "code": "capacity_exhausted", "message": "full",
                         "retryable": True, "retry_after_s": 2})  # fmt: skip
    assert event == ErrorEvent("capacity_exhausted", "full", True, 2.0)


def test_unknown_events_pass_through() -> None:
    assert parse_event({"event": "future_thing", "x": 1}) == UnknownEvent("future_thing")


@pytest.mark.parametrize(
    "obj", [[], {"type": "x"}, {"event": "transcript", "seq": 1}, {"event": "audio_committed"}]
)
def test_malformed_events_are_protocol_violations(obj: object) -> None:
    with pytest.raises(ProtocolViolation):
        parse_event(obj)
