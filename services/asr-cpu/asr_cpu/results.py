"""Engine-neutral recognition results and their mapping to Riva's protobuf messages.

Engines return these plain dataclasses so they stay testable without gRPC; the servicer
turns them into `StreamingRecognitionResult` / `SpeechRecognitionResult` in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from riva.client.proto import riva_asr_pb2 as asr


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start_ms: int  # since the start of this stream
    end_ms: int
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Alternative:
    transcript: str
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Result:
    """One interim or final result for one channel.

    `audio_processed` is seconds since the start of this stream; on a final it is the
    segment's (frame-aligned) end offset, where a new stream may resume.
    """

    alternatives: tuple[Alternative, ...]
    is_final: bool
    audio_processed: float
    channel: int = 0
    stability: float = 0.0

    @property
    def transcript(self) -> str:
        return self.alternatives[0].transcript if self.alternatives else ""


def _alternative_pb(alt: Alternative) -> asr.SpeechRecognitionAlternative:
    return asr.SpeechRecognitionAlternative(
        transcript=alt.transcript,
        confidence=alt.confidence,
        words=[
            asr.WordInfo(
                word=w.word, start_time=w.start_ms, end_time=w.end_ms, confidence=w.confidence
            )
            for w in alt.words
        ],
    )


def to_streaming_result(result: Result) -> asr.StreamingRecognitionResult:
    return asr.StreamingRecognitionResult(
        alternatives=[_alternative_pb(a) for a in result.alternatives],
        is_final=result.is_final,
        stability=result.stability,
        channel_tag=result.channel,
        audio_processed=result.audio_processed,
    )


def to_batch_result(result: Result) -> asr.SpeechRecognitionResult:
    return asr.SpeechRecognitionResult(
        alternatives=[_alternative_pb(a) for a in result.alternatives],
        channel_tag=result.channel,
        audio_processed=result.audio_processed,
    )
