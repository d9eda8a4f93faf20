"""Settings come from the environment with nested names and comma lists."""

from __future__ import annotations

import pytest

from gateway.backends.riva import auth_metadata
from gateway.backends.riva_config import streaming_config
from gateway.config import Settings
from gateway.protocol import TranscriptionConfig


def test_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVA__TARGETS", "10.0.0.1:50051, 10.0.0.2:50051")
    monkeypatch.setenv("LIMITS__MAX_CONCURRENT_SESSIONS", "7")
    monkeypatch.setenv("SERVER__ALLOWED_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("RIVA__API_KEY", "secret-key")
    settings = Settings()
    assert settings.riva.targets == ["10.0.0.1:50051", "10.0.0.2:50051"]
    assert settings.limits.max_concurrent_sessions == 7
    assert settings.server.allowed_origins == ["https://a.example", "https://b.example"]
    assert "secret-key" not in repr(settings)


def test_hosted_endpoint_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVA__API_KEY", "k")
    monkeypatch.setenv("RIVA__FUNCTION_ID", "fn")
    assert auth_metadata(Settings().riva) == (("authorization", "Bearer k"), ("function-id", "fn"))


def test_config_maps_to_riva() -> None:
    config = TranscriptionConfig.model_validate(
        {
            "encoding": "mulaw",
            "sample_rate_hz": 8000,
            "channels": 2,
            "max_alternatives": 3,
            "enable_word_time_offsets": True,
            "boosted_phrases": [{"phrases": ["riva"], "boost": 4.0}],
            "endpointing": {"stop_history_ms": 800},
            "speaker_diarization": True,
            "max_speakers": 3,
            "enable_interim_results": False,
        }
    )
    streaming = streaming_config(config)
    riva = streaming.config
    assert riva.encoding == 3  # MULAW
    assert riva.sample_rate_hertz == 8000
    assert riva.audio_channel_count == 2
    assert riva.enable_separate_recognition_per_channel is True
    assert riva.max_alternatives == 3
    assert riva.enable_word_time_offsets is True
    assert list(riva.speech_contexts[0].phrases) == ["riva"]
    assert riva.endpointing_config.stop_history == 800
    assert riva.diarization_config.max_speaker_count == 3
    assert streaming.interim_results is False
