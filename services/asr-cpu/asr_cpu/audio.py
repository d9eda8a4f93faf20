"""Audio conversions: G.711 to 16-bit PCM, channel handling, resampling to 16 kHz.

Everything here is a pure function of its input bytes, so results never depend on how
a client chunked its audio.
"""

from __future__ import annotations

import numpy as np
import soxr

from asr_cpu.stream_config import Encoding

DECODER_RATE = 16000


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype("<i2")


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = (a & 0x0F) << 4
    magnitude = np.where(
        exponent == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(exponent - 1, 0)
    )
    # In A-law the sign bit set means a positive sample (the opposite of mu-law).
    return np.where(a & 0x80, magnitude, -magnitude).astype("<i2")


MULAW_TO_PCM16 = _mulaw_table()
ALAW_TO_PCM16 = _alaw_table()


def to_pcm16(data: bytes, encoding: Encoding) -> bytes:
    """Decode G.711 bytes to 16-bit little-endian PCM; PCM passes through untouched."""
    if encoding is Encoding.MULAW:
        return MULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)].tobytes()
    if encoding is Encoding.ALAW:
        return ALAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)].tobytes()
    return data


def split_channels(pcm: bytes, channels: int) -> list[bytes]:
    """De-interleave 16-bit PCM into one buffer per channel."""
    if channels == 1:
        return [pcm]
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)
    return [np.ascontiguousarray(samples[:, c]).tobytes() for c in range(channels)]


def downmix(pcm: bytes, channels: int) -> bytes:
    """Average interleaved channels into mono 16-bit PCM."""
    if channels == 1:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.int32)
    mixed: np.ndarray = samples.sum(axis=1) // channels
    return mixed.astype("<i2").tobytes()


def resample_to_decoder_rate(pcm: bytes, rate: int) -> bytes:
    """Resample a whole buffer (one segment) to 16 kHz in one deterministic call."""
    if rate == DECODER_RATE or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    return bytes(soxr.resample(samples, rate, DECODER_RATE).astype("<i2").tobytes())


class StreamResampler:
    """Incremental resampling to 16 kHz, for interim decoding only (finals resample whole)."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._stream = (
            None if rate == DECODER_RATE else soxr.ResampleStream(rate, DECODER_RATE, 1, "int16")
        )

    def push(self, pcm: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        resampled: np.ndarray = self._stream.resample_chunk(samples, last=last)
        return resampled.tobytes()
