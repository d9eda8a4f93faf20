"""Audio files to 16 kHz mono PCM16, block by block (bounded memory whatever the length).

libsndfile (through `soundfile`, whose wheels bundle it) reads WAV, FLAC, MP3 and Ogg
(Vorbis, Opus); `soxr` resamples. Blocking: run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import soundfile  # type: ignore[import-untyped]  # no stubs; typed at our boundary
import soxr

TARGET_RATE = 16000
_BLOCK_S = 5  # seconds of source audio decoded at a time


class UnsupportedAudio(ValueError):
    """The file is not audio in a format this gateway decodes."""


class AudioTooLong(ValueError):
    """The file's audio is longer than the limit."""


def _to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return bytes((clipped * 32767.0).round().astype("<i2").tobytes())


def decode_pcm16(file: BinaryIO, *, max_duration_s: float) -> Iterator[bytes]:
    """Yield the file's audio as 16 kHz mono PCM16 blocks (a few seconds each).

    Raises UnsupportedAudio for anything libsndfile cannot read, AudioTooLong as soon as
    the audio passes `max_duration_s` (before decoding it all when the header tells).
    """
    try:
        sound = soundfile.SoundFile(file)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        # A fixed text: libsndfile's names the upload's temporary file and its address.
        raise UnsupportedAudio("cannot decode the file as audio") from exc
    with sound:
        rate = sound.samplerate
        if sound.frames > 0 and sound.frames / rate > max_duration_s:
            raise AudioTooLong(
                f"the audio is {sound.frames / rate:.1f} s long; the limit is {max_duration_s:g} s"
            )
        resampler = None if rate == TARGET_RATE else soxr.ResampleStream(rate, TARGET_RATE, 1)
        decoded = 0
        try:
            for block in sound.blocks(blocksize=rate * _BLOCK_S, dtype="float32", always_2d=True):
                decoded += len(block)
                if decoded / rate > max_duration_s:
                    raise AudioTooLong(f"the audio is longer than {max_duration_s:g} s")
                mono = block.mean(axis=1, dtype=np.float32)  # down-mix every channel
                if resampler is not None:
                    mono = resampler.resample_chunk(mono)
                if len(mono):
                    yield _to_pcm16(mono)
        except soundfile.LibsndfileError as exc:
            raise UnsupportedAudio("the audio is damaged") from exc
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield _to_pcm16(tail)
