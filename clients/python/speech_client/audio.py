"""Audio files for streaming: WAV (format from its header) or raw (format from the user).

Only encodings whose duration follows from their size are supported (pcm16, mulaw,
alaw): the client cuts audio into frames of a fixed duration, paces them in real time and
keeps a replay buffer addressed by millisecond offsets, all of which need that property.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Bytes per sample (per channel) of each supported encoding.
SAMPLE_BYTES: dict[str, int] = {"pcm16": 2, "mulaw": 1, "alaw": 1}
ENCODINGS = tuple(SAMPLE_BYTES)
DEFAULT_FRAME_MS = 100


class AudioError(ValueError):
    """The audio cannot be streamed as given (unsupported format, bad parameters)."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: str = "pcm16"
    sample_rate_hz: int = 16000
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in SAMPLE_BYTES:
            raise AudioError(
                f"unsupported encoding {self.encoding!r}; use one of {', '.join(ENCODINGS)}"
            )
        if self.sample_rate_hz <= 0:
            raise AudioError(f"sample rate must be positive, not {self.sample_rate_hz}")
        if self.channels <= 0:
            raise AudioError(f"channels must be positive, not {self.channels}")

    @property
    def block_bytes(self) -> int:
        """Bytes of one sample of every channel: audio is only ever cut at these bounds."""
        return SAMPLE_BYTES[self.encoding] * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.block_bytes * self.sample_rate_hz

    def ms_to_bytes(self, ms: int) -> int:
        """The byte offset of `ms` milliseconds, rounded down to a whole sample."""
        return ms * self.sample_rate_hz // 1000 * self.block_bytes

    def bytes_to_ms(self, size: int) -> float:
        return size * 1000 / self.bytes_per_second

    def frame_bytes(self, frame_ms: int) -> int:
        """Bytes in a frame of `frame_ms` ms: whole samples, at least one."""
        if frame_ms <= 0:
            raise AudioError(f"frame duration must be positive, not {frame_ms} ms")
        return max(1, frame_ms * self.sample_rate_hz // 1000) * self.block_bytes


@dataclass(frozen=True, slots=True)
class Audio:
    """A whole audio file in memory, with its format."""

    data: bytes
    format: AudioFormat

    @property
    def duration_ms(self) -> float:
        return self.format.bytes_to_ms(len(self.data))

    def frames(self, frame_ms: int = DEFAULT_FRAME_MS) -> Iterator[bytes]:
        """Consecutive frames of `frame_ms` ms; the last one may be shorter."""
        return split_frames(self.data, self.format, frame_ms)


def split_frames(data: bytes, fmt: AudioFormat, frame_ms: int) -> Iterator[bytes]:
    size = fmt.frame_bytes(frame_ms)
    # A trailing partial sample (a truncated raw file) cannot be decoded: drop it rather
    # than shift every later sample of the stream.
    end = len(data) - len(data) % fmt.block_bytes
    view = memoryview(data)
    for start in range(0, end, size):
        yield bytes(view[start : min(start + size, end)])


def read_wav(path: str | Path) -> Audio:
    """A 16-bit PCM WAV file; any other WAV encoding is refused with a clear message."""
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            if wav.getcomptype() != "NONE" or width != 2:
                raise AudioError(
                    f"{path}: {8 * width}-bit {wav.getcompname()} WAV is not supported; only"
                    " 16-bit PCM WAV is (convert it, e.g. `sox IN -b 16 -e signed OUT.wav`)"
                )
            fmt = AudioFormat("pcm16", wav.getframerate(), wav.getnchannels())
            data = wav.readframes(wav.getnframes())
    except wave.Error as e:
        # The stdlib reader knows only integer PCM: float, mu-law, extensible headers
        # end up here.
        raise AudioError(f"{path}: not a 16-bit PCM WAV file ({e})") from e
    except EOFError as e:
        raise AudioError(f"{path}: truncated WAV file") from e
    return Audio(data, fmt)


def read_raw(path: str | Path, fmt: AudioFormat) -> Audio:
    """Headerless audio in the format the user states."""
    return Audio(Path(path).read_bytes(), fmt)


def read_audio(path: str | Path, raw_format: AudioFormat | None = None) -> Audio:
    """A WAV file (recognised by its RIFF/WAVE header) or, failing that, raw audio.

    `raw_format` applies to raw files only (default: pcm16, 16 kHz, mono); a WAV file's own
    header always wins, since a mismatch would garble the whole stream.
    """
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return read_wav(path)
    return read_raw(path, raw_format or AudioFormat())
