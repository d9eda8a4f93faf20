"""The protocol models accept what PROTOCOL.md allows and name what they reject."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.protocol import (
    SESSION_ID_RE,
    StartTranscription,
    TranscriptionConfig,
    client_message_adapter,
    protocol_json_schema,
)
from gateway.sessions.live import describe_validation_error


def test_defaults_match_protocol_md() -> None:
    config = TranscriptionConfig()
    assert config.language == "en-US"
    assert config.encoding == "pcm16"
    assert config.sample_rate_hz == 16000
    assert config.channels == 1
    assert config.enable_automatic_punctuation is True
    assert config.enable_interim_results is True
    assert config.enable_word_time_offsets is False
    assert config.max_alternatives == 1
    assert config.boosted_phrases == []
    assert config.endpointing is None
    assert config.model == ""


def test_start_without_config_uses_defaults() -> None:
    message = client_message_adapter.validate_json('{"type": "start_transcription"}')
    assert isinstance(message, StartTranscription)
    assert message.config == TranscriptionConfig()


def test_unknown_config_field_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        client_message_adapter.validate_json(
            '{"type": "start_transcription", "config": {"sample_rate": 8000}}'
        )
    assert describe_validation_error(info.value) == "unknown field 'config.sample_rate'"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "dance"}', "type"),
        ('{"type": "keepalive", "extra": 1}', "unknown field 'extra'"),
        ('{"type": "start_transcription", "config": {"sample_rate_hz": 4000}}', "sample_rate_hz"),
        ('{"type": "start_transcription", "config": {"encoding": "mp3"}}', "encoding"),
        ('{"type": "resume_transcription"}', "resume_token"),
    ],
)
def test_invalid_messages_are_described(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        client_message_adapter.validate_json(text)
    assert fragment in describe_validation_error(info.value)


@pytest.mark.parametrize(
    ("session_id", "valid"),
    [
        ("abcdefgh", True),
        ("A" * 64, True),
        ("a-b_c-1234", True),
        ("short", False),
        ("A" * 65, False),
        ("has space1", False),
        ("dots.are.bad", False),
    ],
)
def test_session_id_rule(session_id: str, valid: bool) -> None:
    assert bool(SESSION_ID_RE.fullmatch(session_id)) is valid


def test_bytes_per_ms() -> None:
    assert TranscriptionConfig().bytes_per_ms == 32
    assert TranscriptionConfig(encoding="mulaw", sample_rate_hz=8000).bytes_per_ms == 8
    assert TranscriptionConfig(channels=2, sample_rate_hz=48000).bytes_per_ms == 192
    assert TranscriptionConfig(encoding="flac").bytes_per_ms == 0


def test_json_schema_covers_both_directions() -> None:
    schema = protocol_json_schema()
    client = str(schema["client_message"])
    server = str(schema["server_event"])
    for name in ("start_transcription", "resume_transcription", "stop_transcription"):
        assert name in client
    for name in ("transcription_started", "transcript", "audio_committed", "error"):
        assert name in server


def test_compressed_audio_is_rate_bound_as_pcm16_at_its_rate() -> None:
    from gateway.protocol import TranscriptionConfig

    assert TranscriptionConfig().rate_bound_bytes_per_ms == 32
    flac = TranscriptionConfig(encoding="flac", sample_rate_hz=8000, channels=2)
    assert flac.bytes_per_ms == 0
    assert flac.rate_bound_bytes_per_ms == 32
