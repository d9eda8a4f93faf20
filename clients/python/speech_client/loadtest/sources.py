"""Audio for load-test sessions: files or generated, looped to a duration, cut in frames.

A source's frames are cut once and shared by every session that streams it, so 500
sessions cost one copy of the audio plus a tuple of references each source.
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from speech_client.audio import Audio, AudioError, AudioFormat, read_audio, split_frames

GENERATED = ("noise", "silence", "tone")
GENERATED_LOOP_S = 10  # generated audio repeats with this period
DEFAULT_GENERATED_DURATION_S = 30.0
TONE_HZ = 440.0
TONE_AMPLITUDE = 8000  # of 32767: a clear tone well below clipping


@dataclass(frozen=True, slots=True)
class FramePlan:
    """The frames one session streams, in order; every frame but the last is full size."""

    name: str  # the file, or the kind of generated audio
    format: AudioFormat
    frame_bytes: int
    frames: tuple[bytes, ...]

    @property
    def audio_ms(self) -> float:
        return self.format.bytes_to_ms(sum(len(f) for f in self.frames))


def generate(kind: str, fmt: AudioFormat, seconds: float = GENERATED_LOOP_S) -> Audio:
    """pcm16 `noise` (white, full scale: what the synthetic engine turns into words),
    `silence` or a 440 Hz `tone`."""
    if fmt.encoding != "pcm16":
        raise AudioError(f"generated audio is pcm16, not {fmt.encoding}")
    samples = round(seconds * fmt.sample_rate_hz) * fmt.channels
    if kind == "noise":
        return Audio(random.Random(0).randbytes(samples * 2), fmt)
    if kind == "silence":
        return Audio(bytes(samples * 2), fmt)
    if kind == "tone":
        step = 2 * math.pi * TONE_HZ / fmt.sample_rate_hz
        wave = array(
            "h",
            (round(TONE_AMPLITUDE * math.sin(step * (i // fmt.channels))) for i in range(samples)),
        )
        if sys.byteorder == "big":
            wave.byteswap()  # pcm16 is little-endian on the wire
        return Audio(wave.tobytes(), fmt)
    raise AudioError(f"unknown generated audio {kind!r}; use one of {', '.join(GENERATED)}")


def plan_frames(name: str, audio: Audio, frame_ms: int, duration_s: float | None) -> FramePlan:
    """The frames of `audio`, once (`duration_s` None) or looped for `duration_s` seconds.

    Looped audio is cut into whole frames and a partial frame at the end of each pass is
    dropped (less than `frame_ms` per pass), so that every frame but the session's last is
    full size and a byte offset maps to its frame by one division.
    """
    fmt = audio.format
    size = fmt.frame_bytes(frame_ms)
    if duration_s is None:
        frames = tuple(split_frames(audio.data, fmt, frame_ms))
        if not frames:
            raise AudioError(f"{name}: no audio")
        return FramePlan(name, fmt, size, frames)
    if duration_s <= 0:
        raise AudioError(f"duration must be positive, not {duration_s} s")
    view = memoryview(audio.data)
    loop = [bytes(view[o : o + size]) for o in range(0, len(audio.data) - size + 1, size)]
    if not loop:
        raise AudioError(f"{name}: shorter than one frame ({frame_ms} ms)")
    total = fmt.ms_to_bytes(round(duration_s * 1000))
    full, rest = divmod(total, size)
    planned = [loop[i % len(loop)] for i in range(full)]
    if rest:
        planned.append(loop[full % len(loop)][:rest])
    return FramePlan(name, fmt, size, tuple(planned))


def load_plans(
    files: Sequence[str],
    generated: str | None,
    raw_format: AudioFormat,
    frame_ms: int,
    duration_s: float | None,
) -> list[FramePlan]:
    """One plan per file (cycled across sessions), or one of generated audio."""
    if files:
        return [plan_frames(f, read_audio(f, raw_format), frame_ms, duration_s) for f in files]
    kind = generated or "noise"
    fmt = AudioFormat("pcm16", raw_format.sample_rate_hz, 1)
    duration = DEFAULT_GENERATED_DURATION_S if duration_s is None else duration_s
    return [plan_frames(kind, generate(kind, fmt), frame_ms, duration)]
