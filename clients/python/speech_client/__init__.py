"""Client SDK and CLI for the speech gateway's WebSocket protocol (PROTOCOL.md v1)."""

from speech_client.audio import Audio, AudioError, AudioFormat, read_audio
from speech_client.client import (
    ClientOptions,
    Transcription,
    TranscriptionResult,
    transcribe,
    transcribe_all,
)
from speech_client.config import TranscriptionConfig
from speech_client.errors import TranscriptionError
from speech_client.events import (
    AudioCommitted,
    Event,
    Reconnect,
    Transcript,
    TranscriptionResumed,
    TranscriptionStarted,
    TranscriptionStopped,
)

__all__ = [
    "Audio",
    "AudioCommitted",
    "AudioError",
    "AudioFormat",
    "ClientOptions",
    "Event",
    "Reconnect",
    "Transcript",
    "Transcription",
    "TranscriptionConfig",
    "TranscriptionError",
    "TranscriptionResult",
    "TranscriptionResumed",
    "TranscriptionStarted",
    "TranscriptionStopped",
    "read_audio",
    "transcribe",
    "transcribe_all",
]
