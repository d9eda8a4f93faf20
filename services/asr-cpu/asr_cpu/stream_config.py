"""Validation of Riva `RecognitionConfig`s, the way Riva itself would refuse them.

Everything a client can get wrong is checked here, before any engine work, and turned
into one `ConfigError` whose message the servicer returns as INVALID_ARGUMENT.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_audio_pb2 as audio_pb

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
MAX_ALTERNATIVES = 10
MAX_CHANNELS = 2
LANGUAGE = "en-US"


class ConfigError(ValueError):
    """A request the server refuses: becomes INVALID_ARGUMENT with this message."""


class Encoding(Enum):
    LINEAR_PCM = "LINEAR_PCM"
    MULAW = "MULAW"
    ALAW = "ALAW"

    @property
    def sample_width(self) -> int:
        return 2 if self is Encoding.LINEAR_PCM else 1


_ENCODINGS = {
    audio_pb.LINEAR_PCM: Encoding.LINEAR_PCM,
    audio_pb.MULAW: Encoding.MULAW,
    audio_pb.ALAW: Encoding.ALAW,
}


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What an engine needs to know about one stream (or one batch request)."""

    encoding: Encoding
    sample_rate: int
    channels: int
    separate_channels: bool
    max_alternatives: int
    word_time_offsets: bool
    interim_results: bool
    stop_history_ms: int  # 0 = engine default

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample across all channels (an audio 'frame' in the WAV sense)."""
        return self.encoding.sample_width * self.channels


def parse_recognition_config(
    config: asr.RecognitionConfig, *, interim_results: bool, model_names: tuple[str, ...]
) -> StreamSettings:
    encoding = _ENCODINGS.get(config.encoding)
    if encoding is None:
        name = audio_pb.AudioEncoding.Name(config.encoding)
        if config.encoding == audio_pb.ENCODING_UNSPECIFIED:
            raise ConfigError("encoding must be set: LINEAR_PCM, MULAW or ALAW")
        raise ConfigError(
            f"encoding {name} is not supported by this server (use LINEAR_PCM, MULAW or ALAW)"
        )
    if not MIN_SAMPLE_RATE <= config.sample_rate_hertz <= MAX_SAMPLE_RATE:
        raise ConfigError(
            f"sample_rate_hertz {config.sample_rate_hertz} is out of range "
            f"({MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})"
        )
    # Riva treats an empty language as the default model's language.
    if config.language_code and config.language_code.lower() != LANGUAGE.lower():
        raise ConfigError(
            f"language_code {config.language_code!r} is not supported (only {LANGUAGE})"
        )
    if config.model and config.model not in model_names:
        raise ConfigError(
            f"model {config.model!r} is not available (available: {', '.join(model_names)})"
        )
    channels = config.audio_channel_count or 1
    if not 1 <= channels <= MAX_CHANNELS:
        raise ConfigError(
            f"audio_channel_count {config.audio_channel_count} is not supported (1 or 2)"
        )
    if not 0 <= config.max_alternatives <= MAX_ALTERNATIVES:
        raise ConfigError(
            f"max_alternatives {config.max_alternatives} is out of range (0..{MAX_ALTERNATIVES})"
        )
    stop_history = config.endpointing_config.stop_history
    if stop_history < 0:
        raise ConfigError(f"endpointing_config.stop_history {stop_history} must be >= 0")
    return StreamSettings(
        encoding=encoding,
        sample_rate=config.sample_rate_hertz,
        channels=channels,
        separate_channels=channels > 1 and config.enable_separate_recognition_per_channel,
        max_alternatives=max(1, config.max_alternatives),
        word_time_offsets=config.enable_word_time_offsets,
        interim_results=interim_results,
        stop_history_ms=stop_history,
    )


def check_audio_chunk(settings: StreamSettings, chunk: bytes) -> None:
    """Each chunk must hold whole samples for every channel (no odd-length PCM)."""
    if len(chunk) % settings.bytes_per_frame:
        raise ConfigError(
            f"audio_content of {len(chunk)} bytes is not a whole number of "
            f"{settings.bytes_per_frame}-byte samples ({settings.encoding.value}, "
            f"{settings.channels} channel(s))"
        )
