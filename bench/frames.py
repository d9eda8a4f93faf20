"""What the load generator sends, built once: 16 kHz PCM16 mono noise cut into frames,
the WebSocket client frames around it, and the finals arithmetic that follows from the
synthetic engine's pace (a final every 2 s of audio)."""

from __future__ import annotations

import array
import random
import sys
from collections.abc import Sequence

SAMPLE_RATE = 16000
FRAME_MS = 100
FRAME_BYTES = SAMPLE_RATE * 2 * FRAME_MS // 1000
FRAME_S = FRAME_MS / 1000
# Distinct 100 ms frames of noise; each session starts at its own place in the cycle.
NOISE_FRAMES = 64
FINAL_EVERY_MS = 2000  # the synthetic engine's, as bench starts it


def noise_frames(count: int, seed: int = 1) -> list[bytes]:
    """`count` 100 ms frames of Gaussian noise (PCM16 LE, sigma ~ -30 dBFS): the synthetic
    engine derives its words from the audio bytes, so every frame differs."""
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        samples = array.array(
            "h", (max(-32768, min(32767, int(rng.gauss(0, 1000)))) for _ in range(FRAME_BYTES // 2))
        )
        if sys.byteorder != "little":
            samples.byteswap()
        frames.append(samples.tobytes())
    return frames


def cut_frames(frames: Sequence[bytes], frame_ms: int) -> list[bytes]:
    """The same audio as `frames` (100 ms each, in a cycle) cut into `frame_ms` frames;
    `frame_ms` must divide the whole cycle."""
    audio = b"".join(frames)
    size = SAMPLE_RATE * 2 * frame_ms // 1000
    if size <= 0 or len(audio) % size:
        raise ValueError(f"{frame_ms} ms frames do not divide {len(frames) * FRAME_MS} ms")
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame with the masking bit set and an all-zero key (so the masked
    payload is the payload itself)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\x00\x00\x00\x00" + payload


def expected_finals(frames_sent: int, frames_per_final: int = FINAL_EVERY_MS // FRAME_MS) -> int:
    """A final per whole window of the synthetic engine, and one for the partial window
    that the stop flushes."""
    return -(-frames_sent // frames_per_final)


def frame_index_for(end_ms: int, frame_ms: int = FRAME_MS) -> int:
    """The frame whose sending completed the audio up to `end_ms`."""
    return -(-end_ms // frame_ms) - 1
