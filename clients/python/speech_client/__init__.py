"""Client SDK and CLI for the speech gateway's WebSocket protocol (PROTOCOL.md v1)."""

from speech_client.audio import Audio, AudioError, AudioFormat, read_audio
from speech_client.client import ClientOptions, Transcription
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
from speech_client.simple import TranscriptionResult, transcribe, transcribe_all

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
