"""G.711 tables and channel handling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from asr_cpu import audio
from asr_cpu.stream_config import Encoding

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the standard library's reference G.711 codec (until Python 3.13)


def test_mulaw_table_matches_the_reference_codec() -> None:
    every_byte = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(every_byte, 2), dtype="<i2")
    assert np.array_equal(audio.MULAW_TO_PCM16, expected)


def test_alaw_table_matches_the_reference_codec() -> None:
    every_byte = bytes(range(256))
    expected = np.frombuffer(audioop.alaw2lin(every_byte, 2), dtype="<i2")
    assert np.array_equal(audio.ALAW_TO_PCM16, expected)


@pytest.mark.parametrize(
    ("encoding", "encode"), [(Encoding.MULAW, audioop.lin2ulaw), (Encoding.ALAW, audioop.lin2alaw)]
)
def test_to_pcm16_round_trips_within_g711_precision(encoding: Encoding, encode: object) -> None:
    pcm = (np.sin(np.arange(800) / 10) * 20000).astype("<i2")
    coded = encode(pcm.tobytes(), 2)  # type: ignore[operator]
    decoded = np.frombuffer(audio.to_pcm16(coded, encoding), dtype="<i2")
    assert np.max(np.abs(decoded.astype(int) - pcm)) < 20000 / 16


def test_linear_pcm_passes_through_untouched() -> None:
    data = b"\x01\x02\x03\x04"
    assert audio.to_pcm16(data, Encoding.LINEAR_PCM) is data


def test_split_and_downmix_stereo() -> None:
    stereo = np.array([[100, -100], [200, 0], [-300, 300]], dtype="<i2").tobytes()
    left, right = audio.split_channels(stereo, 2)
    assert np.frombuffer(left, "<i2").tolist() == [100, 200, -300]
    assert np.frombuffer(right, "<i2").tolist() == [-100, 0, 300]
    assert np.frombuffer(audio.downmix(stereo, 2), "<i2").tolist() == [0, 100, 0]


def test_resampling_a_segment_is_deterministic() -> None:
    pcm = (np.sin(np.arange(8000) / 7) * 10000).astype("<i2").tobytes()
    once = audio.resample_to_decoder_rate(pcm, 8000)
    assert len(once) == 2 * len(pcm)
    assert audio.resample_to_decoder_rate(pcm, 8000) == once
    assert audio.resample_to_decoder_rate(pcm, 16000) is pcm
