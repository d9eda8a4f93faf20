"""OpenAI realtime transcription events: the client's session configuration as a
TranscriptionConfig, and the server events the adapter sends."""

from __future__ import annotations

import itertools
from typing import Any

from gateway.files.openai_format import riva_language, riva_model
from gateway.protocol import Encoding, TranscriptionConfig

DEFAULT_PCM_RATE = 24000  # OpenAI's audio/pcm is 24 kHz
# The older (beta) `input_audio_format` names, which NVIDIA's Riva NIM speaks too.
_BETA_FORMATS: dict[str, tuple[Encoding, int]] = {
    "pcm16": ("pcm16", DEFAULT_PCM_RATE),
    "g711_ulaw": ("mulaw", 8000),
    "g711_alaw": ("alaw", 8000),
    "none": ("pcm16", 16000),  # Riva NIM: the client's file, its PCM (or WAV) as is
}
_GA_FORMATS: dict[str, Encoding] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "mulaw",
    "audio/pcma": "alaw",
}
_GA_NAMES = {"pcm16": "audio/pcm", "mulaw": "audio/pcmu", "alaw": "audio/pcma"}


class UnsupportedSession(ValueError):
    """A session configuration this adapter cannot honour."""


def config_from_session(session: dict[str, Any]) -> TranscriptionConfig:
    """TranscriptionConfig from `session.update`'s (GA) or `transcription_session.update`'s
    (beta) `session` object."""
    encoding: Encoding = "pcm16"
    rate = DEFAULT_PCM_RATE
    channels = 1
    transcription: dict[str, Any] = {}
    recognition: dict[str, Any] = {}
    audio_input = (session.get("audio") or {}).get("input") or {}
    if audio_input:  # GA shape
        fmt = audio_input.get("format") or {}
        kind = fmt.get("type", "audio/pcm")
        if kind not in _GA_FORMATS:
            raise UnsupportedSession(f"audio format {kind!r} is not supported")
        encoding = _GA_FORMATS[kind]
        rate = int(fmt.get("rate") or (DEFAULT_PCM_RATE if encoding == "pcm16" else 8000))
        transcription = audio_input.get("transcription") or {}
    elif "input_audio_format" in session or "input_audio_transcription" in session:
        name = session.get("input_audio_format") or "pcm16"
        if name not in _BETA_FORMATS:
            raise UnsupportedSession(f"input_audio_format {name!r} is not supported")
        encoding, rate = _BETA_FORMATS[name]
        # Riva NIM's own fields: the PCM's rate and channels ("none": PCM, or a WAV file).
        params = session.get("input_audio_params") or {}
        rate = int(params.get("sample_rate_hz") or rate)
        channels = int(params.get("num_channels") or 1)
        transcription = session.get("input_audio_transcription") or {}
        recognition = session.get("recognition_config") or {}
    return TranscriptionConfig(
        encoding=encoding,
        sample_rate_hz=rate,
        channels=channels,
        language=riva_language(transcription.get("language")),
        model=riva_model(transcription.get("model") or ""),
        enable_interim_results=True,
        max_alternatives=int(recognition.get("max_alternatives") or 1),
        enable_automatic_punctuation=bool(recognition.get("enable_automatic_punctuation", True)),
        enable_word_time_offsets=bool(recognition.get("enable_word_time_offsets", False)),
        profanity_filter=bool(recognition.get("enable_profanity_filter", False)),
    )


class EventIds:
    """`event_id`s of one connection."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"event_{self._prefix}_{next(self._count)}"


def session_object(session_id: str, config: TranscriptionConfig) -> dict[str, Any]:
    fmt: dict[str, Any] = {"type": _GA_NAMES.get(config.encoding, "audio/pcm")}
    if config.encoding == "pcm16":
        fmt["rate"] = config.sample_rate_hz
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "audio": {
            "input": {
                "format": fmt,
                "transcription": {"model": config.model, "language": config.language},
                # Riva endpoints utterances itself: each final is a committed item.
                "turn_detection": {"type": "server_vad"},
                "noise_reduction": None,
            }
        },
        "include": None,
    }


def error_event(event_id: str, code: str, message: str, *, server: bool = False) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": event_id,
        "error": {
            "type": "server_error" if server else "invalid_request_error",
            "code": code,
            "message": message,
            "param": None,
            "event_id": None,
        },
    }


def beta_session_object(session_id: str, config: TranscriptionConfig) -> dict[str, Any]:
    """The session in the older `transcription_session` shape (and Riva NIM's fields)."""
    names = {"pcm16": "pcm16", "mulaw": "g711_ulaw", "alaw": "g711_alaw"}
    return {
        "id": session_id,
        "object": "realtime.transcription_session",
        "input_audio_format": names.get(config.encoding, "pcm16"),
        "input_audio_transcription": {"model": config.model, "language": config.language},
        "input_audio_params": {
            "sample_rate_hz": config.sample_rate_hz,
            "num_channels": config.channels,
        },
        "recognition_config": {
            "max_alternatives": config.max_alternatives,
            "enable_automatic_punctuation": config.enable_automatic_punctuation,
            "enable_word_time_offsets": config.enable_word_time_offsets,
            "enable_profanity_filter": config.profanity_filter,
        },
        "turn_detection": {"type": "server_vad"},
    }
