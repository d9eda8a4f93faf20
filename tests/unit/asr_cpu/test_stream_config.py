"""Validation of RecognitionConfig, as Riva would refuse it."""

from __future__ import annotations

from typing import Any

import pytest
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_audio_pb2 as audio_pb

from asr_cpu.stream_config import ConfigError, Encoding, check_audio_chunk, parse_recognition_config


def parse(**fields: Any) -> Any:
    base: dict[str, Any] = {"encoding": audio_pb.LINEAR_PCM, "sample_rate_hertz": 16000}
    return parse_recognition_config(
        asr.RecognitionConfig(**{**base, **fields}),
        interim_results=True,
        model_names=("pocketsphinx-en-US",),
    )


def test_defaults_follow_riva() -> None:
    settings = parse()
    assert settings.encoding is Encoding.LINEAR_PCM
    assert (settings.channels, settings.max_alternatives, settings.bytes_per_frame) == (1, 1, 2)
    assert parse(language_code="en-us").sample_rate == 16000


def test_stereo_separate_only_when_asked() -> None:
    assert not parse(audio_channel_count=2).separate_channels
    assert parse(audio_channel_count=2, enable_separate_recognition_per_channel=True).channels == 2
    assert parse(encoding=audio_pb.MULAW, audio_channel_count=2).bytes_per_frame == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"encoding": audio_pb.FLAC}, "FLAC is not supported by this server"),
        ({"encoding": audio_pb.OGGOPUS}, "OGGOPUS is not supported by this server"),
        ({"encoding": audio_pb.ENCODING_UNSPECIFIED}, "encoding must be set"),
        ({"sample_rate_hertz": 0}, "sample_rate_hertz 0 is out of range"),
        ({"sample_rate_hertz": 96000}, "sample_rate_hertz 96000 is out of range"),
        ({"language_code": "fr-FR"}, "language_code 'fr-FR' is not supported"),
        ({"audio_channel_count": 3}, "audio_channel_count 3"),
        ({"max_alternatives": 11}, "max_alternatives 11"),
        ({"model": "conformer"}, "model 'conformer' is not available"),
        (
            {"endpointing_config": asr.EndpointingConfig(stop_history=-1)},
            "stop_history -1 must be >= 0",
        ),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(**fields)


def test_audio_chunks_must_hold_whole_samples() -> None:
    check_audio_chunk(parse(), b"\0" * 4)
    with pytest.raises(ConfigError, match="not a whole number of 2-byte samples"):
        check_audio_chunk(parse(), b"\0" * 3)
    with pytest.raises(ConfigError, match="4-byte samples"):
        check_audio_chunk(parse(audio_channel_count=2), b"\0" * 6)
    check_audio_chunk(parse(encoding=audio_pb.MULAW), b"\0" * 3)
