"""PROTOCOL.md version 1 as types: every client message and server event.

The published JSON Schema is generated from these models (`protocol_json_schema`). On the
hot path the gateway builds `transcript` events as plain dicts for speed; a unit test
checks that those dicts validate against `TranscriptEvent`.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class ErrorCode(StrEnum):
    INVALID_MESSAGE = "invalid_message"
    INVALID_CONFIG = "invalid_config"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN_ORIGIN = "forbidden_origin"
    SESSION_EXISTS = "session_exists"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_EXPIRED = "session_expired"
    SESSION_TAKEN_OVER = "session_taken_over"
    QUOTA_EXCEEDED = "quota_exceeded"
    CAPACITY_EXHAUSTED = "capacity_exhausted"
    RATE_LIMITED = "rate_limited"
    AUDIO_TOO_FAST = "audio_too_fast"
    FRAME_TOO_LARGE = "frame_too_large"
    SLOW_CONSUMER = "slow_consumer"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_ERROR = "backend_error"
    INTERNAL_ERROR = "internal_error"


class CloseCode(IntEnum):
    NORMAL = 1000
    POLICY = 1008
    TOO_LARGE = 1009
    INTERNAL = 1011
    RESTARTING = 1012
    TRY_AGAIN_LATER = 1013


class _Strict(BaseModel):
    # A misspelt option must not be silently ignored (PROTOCOL.md).
    model_config = ConfigDict(extra="forbid")


class BoostedPhrases(_Strict):
    phrases: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=1000
    )
    boost: float = 1.0


class EndpointingConfig(_Strict):
    start_history_ms: int | None = Field(default=None, ge=0)
    start_threshold: float | None = Field(default=None, ge=0, le=1)
    stop_history_ms: int | None = Field(default=None, ge=0)
    stop_threshold: float | None = Field(default=None, ge=0, le=1)
    stop_history_eou_ms: int | None = Field(default=None, ge=0)
    stop_threshold_eou: float | None = Field(default=None, ge=0, le=1)


Encoding = Literal["pcm16", "mulaw", "alaw", "flac", "ogg_opus"]

# Bytes per sample of the encodings whose duration follows from their size.
RAW_SAMPLE_BYTES: dict[str, int] = {"pcm16": 2, "mulaw": 1, "alaw": 1}


class TranscriptionConfig(_Strict):
    language: str = Field(default="en-US", min_length=2, max_length=35)
    encoding: Encoding = "pcm16"
    sample_rate_hz: int = Field(default=16000, ge=8000, le=48000)
    channels: int = Field(default=1, ge=1, le=2)
    enable_automatic_punctuation: bool = True
    enable_interim_results: bool = True
    enable_word_time_offsets: bool = False
    max_alternatives: int = Field(default=1, ge=1, le=10)
    profanity_filter: bool = False
    speaker_diarization: bool = False
    max_speakers: int = Field(default=2, ge=1, le=32)
    boosted_phrases: list[BoostedPhrases] = Field(default_factory=list, max_length=100)
    endpointing: EndpointingConfig | None = None
    model: str = Field(default="", max_length=256)

    @property
    def bytes_per_ms(self) -> float:
        """Audio bytes per millisecond, or 0 for compressed encodings."""
        sample_bytes = RAW_SAMPLE_BYTES.get(self.encoding, 0)
        return sample_bytes * self.channels * self.sample_rate_hz / 1000

    @property
    def rate_bound_bytes_per_ms(self) -> float:
        """Bytes per ms for the real-time rate bound. Compressed audio is bounded as if it
        were 16-bit PCM at its rate: FLAC is never larger, Opus far smaller (the bound is
        loose for Opus; its duration is known only once decoded)."""
        return self.bytes_per_ms or 2 * self.channels * self.sample_rate_hz / 1000

    def byte_offset(self, ms: int) -> int:
        """The byte offset of the sample nearest to `ms` (0 for compressed encodings)."""
        frame = RAW_SAMPLE_BYTES.get(self.encoding, 0) * self.channels
        return round(ms * self.sample_rate_hz / 1000) * frame


# ---- client to server -------------------------------------------------------------------


class StartTranscription(_Strict):
    type: Literal["start_transcription"]
    config: TranscriptionConfig = Field(default_factory=TranscriptionConfig)


class ResumeTranscription(_Strict):
    type: Literal["resume_transcription"]
    resume_token: str = Field(min_length=1, max_length=512)
    last_seq: int = Field(default=0, ge=0)


class Finalize(_Strict):
    type: Literal["finalize"]


class Keepalive(_Strict):
    type: Literal["keepalive"]


class StopTranscription(_Strict):
    type: Literal["stop_transcription"]


ClientMessage = Annotated[
    StartTranscription | ResumeTranscription | Finalize | Keepalive | StopTranscription,
    Field(discriminator="type"),
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# ---- server to client -------------------------------------------------------------------


class TranscriptionStarted(BaseModel):
    event: Literal["transcription_started"] = "transcription_started"
    session_id: str
    resume_token: str
    config: TranscriptionConfig


class TranscriptionResumed(BaseModel):
    event: Literal["transcription_resumed"] = "transcription_resumed"
    session_id: str
    resume_from_ms: int
    replayed_finals: int


class Word(BaseModel):
    word: str
    start_ms: int
    end_ms: int
    confidence: float
    speaker: int | None = None


class Alternative(BaseModel):
    transcript: str
    confidence: float
    words: list[Word] | None = None


class TranscriptEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["transcript"] = "transcript"
    seq: int = Field(ge=1)
    is_final: bool
    channel: int = Field(ge=0)
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    stability: float
    alternatives: list[Alternative]


class AudioCommitted(BaseModel):
    event: Literal["audio_committed"] = "audio_committed"
    committed_ms: int


class Reconnect(BaseModel):
    event: Literal["reconnect"] = "reconnect"
    reason: str
    resume_token: str


class ErrorEvent(BaseModel):
    event: Literal["error"] = "error"
    code: ErrorCode
    message: str
    retryable: bool
    retry_after_s: float | None = None


class TranscriptionStopped(BaseModel):
    event: Literal["transcription_stopped"] = "transcription_stopped"
    session_id: str
    audio_ms: int
    finals: int


ServerEvent = Annotated[
    TranscriptionStarted
    | TranscriptionResumed
    | TranscriptEvent
    | AudioCommitted
    | Reconnect
    | ErrorEvent
    | TranscriptionStopped,
    Field(discriminator="event"),
]
server_event_adapter: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)


def protocol_json_schema() -> dict[str, Any]:
    """The JSON Schema of both directions of protocol version 1."""
    return {
        "client_message": client_message_adapter.json_schema(),
        "server_event": server_event_adapter.json_schema(),
    }
