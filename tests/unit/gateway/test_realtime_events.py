"""OpenAI realtime session objects to TranscriptionConfig: GA and beta shapes."""

from __future__ import annotations

import pytest

from gateway.realtime.openai_events import UnsupportedSession, config_from_session
from gateway.realtime.openai_socket import strip_wav_header


def test_ga_formats() -> None:
    audio_input = {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": {"model": "gpt-4o-transcribe", "language": "de"},
    }
    pcm = config_from_session({"type": "transcription", "audio": {"input": audio_input}})
    assert (pcm.encoding, pcm.sample_rate_hz, pcm.language, pcm.model) == (
        "pcm16", 24000, "de-DE", ""
    )  # fmt: skip
    ulaw = config_from_session({"audio": {"input": {"format": {"type": "audio/pcmu"}}}})
    assert (ulaw.encoding, ulaw.sample_rate_hz) == ("mulaw", 8000)
    alaw = config_from_session({"audio": {"input": {"format": {"type": "audio/pcma"}}}})
    assert (alaw.encoding, alaw.sample_rate_hz) == ("alaw", 8000)


def test_beta_shape_and_riva_model_names_pass_through() -> None:
    config = config_from_session(
        {"input_audio_format": "g711_alaw",
         "input_audio_transcription": {"model": "parakeet-1.1b-en-US-asr-streaming",
                                       "language": "en-US"}}
    )  # fmt: skip
    assert (config.encoding, config.sample_rate_hz, config.language) == ("alaw", 8000, "en-US")
    assert config.model == "parakeet-1.1b-en-US-asr-streaming"
    assert config_from_session({}).sample_rate_hz == 24000


@pytest.mark.parametrize(
    "session",
    [
        {"audio": {"input": {"format": {"type": "audio/opus"}}}},
        {"input_audio_format": "mp3"},
        {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 96000}}}},
    ],
)
def test_unsupported_sessions_are_refused(session: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"not supported|less than or equal"):
        config_from_session(session)
    assert issubclass(UnsupportedSession, ValueError)


def test_riva_nim_fields() -> None:
    config = config_from_session(
        {"input_audio_format": "none", "input_audio_params": {"sample_rate_hz": 44100,
         "num_channels": 2}, "recognition_config": {"enable_word_time_offsets": True,
         "max_alternatives": 2}, "client_secret": {"value": "x"}}
    )  # fmt: skip
    assert (config.encoding, config.sample_rate_hz, config.channels) == ("pcm16", 44100, 2)
    assert (config.enable_word_time_offsets, config.max_alternatives) == (True, 2)


def test_a_wav_header_is_stripped_and_pcm_left_alone() -> None:
    header = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20) + b"data\x04\x00\x00\x00"
    assert strip_wav_header(header + b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04"
    assert strip_wav_header(b"\x01\x02data\x00\x00") == b"\x01\x02data\x00\x00"
