"""Flags and their ASR_* environment variables."""

from __future__ import annotations

import pytest

from asr_cpu.settings import parse_settings


def test_engine_defaults() -> None:
    settings = parse_settings([], env={})
    assert (settings.host, settings.port, settings.engine) == ("127.0.0.1", 50051, "pocketsphinx")
    assert (settings.max_streams, settings.interim_every_s) == (8, 0.4)
    synthetic = parse_settings(["--engine", "synthetic"], env={})
    assert (synthetic.max_streams, synthetic.interim_every_s) == (2000, 0.2)


def test_environment_sets_flags_and_flags_win() -> None:
    env = {"ASR_PORT": "6000", "ASR_ENGINE": "synthetic", "ASR_MAX_STREAMS": "3"}
    settings = parse_settings([], env=env)
    assert (settings.port, settings.engine, settings.max_streams) == (6000, "synthetic", 3)
    assert parse_settings(["--port", "7000"], env=env).port == 7000


def test_bad_environment_values_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_settings([], env={"ASR_ENGINE": "whisper"})
    with pytest.raises(SystemExit):  # argparse applies `type` to string defaults too
        parse_settings([], env={"ASR_DECODE_WORKERS": "0"})


def test_metrics_port_is_off_unless_set() -> None:
    assert parse_settings([], env={}).metrics_port is None
    assert parse_settings([], env={"ASR_METRICS_PORT": "9400"}).metrics_port == 9400
    assert parse_settings(["--metrics-port", "9401"], env={}).metrics_port == 9401
