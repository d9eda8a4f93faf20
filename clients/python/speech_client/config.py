"""TranscriptionConfig of PROTOCOL.md as a TypedDict: every field optional, names exact.

The gateway rejects unknown fields, so a misspelt key fails loudly there; typing the dict
lets mypy catch it here first.
"""

from __future__ import annotations

from typing import Any, TypedDict

from speech_client.audio import AudioFormat


class BoostedPhrases(TypedDict, total=False):
    phrases: list[str]
    boost: float


class TranscriptionConfig(TypedDict, total=False):
    language: str
    encoding: str
    sample_rate_hz: int
    channels: int
    enable_automatic_punctuation: bool
    enable_interim_results: bool
    enable_word_time_offsets: bool
    max_alternatives: int
    profanity_filter: bool
    speaker_diarization: bool
    max_speakers: int
    boosted_phrases: list[BoostedPhrases]
    endpointing: dict[str, Any] | None
    model: str


def config_for(fmt: AudioFormat, config: TranscriptionConfig | None = None) -> TranscriptionConfig:
    """`config` with the audio fields taken from `fmt`: the audio itself is the authority."""
    merged = config.copy() if config else TranscriptionConfig()
    merged["encoding"] = fmt.encoding
    merged["sample_rate_hz"] = fmt.sample_rate_hz
    merged["channels"] = fmt.channels
    return merged
