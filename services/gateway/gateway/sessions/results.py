"""Riva recognition results to PROTOCOL.md `transcript` events (plain dicts, for speed)."""

from __future__ import annotations

from typing import Any

from riva.client.proto import riva_asr_pb2 as asr


def transcript_event(
    result: asr.StreamingRecognitionResult,
    *,
    seq: int,
    base_ms: int,
    utterance_start_ms: int,
    with_words: bool,
) -> dict[str, Any]:
    """One `transcript` event; backend times are relative to its stream, which began at
    `base_ms` of the session's audio."""
    end_ms = base_ms + round(result.audio_processed * 1000)
    alternatives: list[dict[str, Any]] = []
    start_ms = utterance_start_ms
    for index, alt in enumerate(result.alternatives):
        item: dict[str, Any] = {
            "transcript": alt.transcript,
            "confidence": round(alt.confidence, 4),
        }
        if with_words:
            words = [
                {
                    "word": w.word,
                    "start_ms": base_ms + w.start_time,
                    "end_ms": base_ms + w.end_time,
                    "confidence": round(w.confidence, 4),
                    **({"speaker": w.speaker_tag} if w.speaker_tag else {}),
                }
                for w in alt.words
            ]
            item["words"] = words
            if index == 0 and words:
                start_ms = words[0]["start_ms"]
        alternatives.append(item)
    return {
        "event": "transcript",
        "seq": seq,
        "is_final": result.is_final,
        "channel": result.channel_tag,
        "start_ms": min(start_ms, end_ms),
        "end_ms": end_ms,
        "stability": round(result.stability, 4),
        "alternatives": alternatives,
    }
