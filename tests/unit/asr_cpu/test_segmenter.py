"""Segmentation determinism, with PocketSphinx's Endpointer and no server."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from asr_cpu.engines.segmenter import Segmenter

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
RATE = 16000


@pytest.fixture(scope="module")
def joined() -> bytes:
    clips = []
    for path in sorted(LIBRIVOX.glob("*.wav")):
        with wave.open(str(path)) as w:
            clips.append(w.readframes(w.getnframes()))
    return (b"\0" * RATE).join(clips)  # 0.5 s of silence between clips


def segments(audio: bytes, chunk: int) -> list[tuple[int, int, bytes]]:
    segmenter = Segmenter(RATE)
    found = [s for i in range(0, len(audio), chunk) for s in segmenter.push(audio[i : i + chunk])]
    last = segmenter.finish()
    return [(s.start, s.end, s.pcm) for s in [*found, *([last] if last else [])]]


def test_segments_match_design_md(joined: bytes) -> None:
    bounds = [(round(a / RATE, 2), round(b / RATE, 2)) for a, b, _ in segments(joined, 3200)]
    # DESIGN.md: with a fresh Endpointer per segment, the third segment is 11.34-16.35 s.
    assert bounds[:4] == [(0.24, 7.02), (7.59, 10.77), (11.34, 16.35), (16.89, 23.07)]
    assert bounds[4][1] == round(len(joined) / 2 / RATE, 2)  # the last ends with the stream


@pytest.mark.parametrize("chunk", [2, 1184, 960, 3200, 32000, 10**9])
def test_segments_do_not_depend_on_request_size(joined: bytes, chunk: int) -> None:
    assert segments(joined, chunk) == segments(joined, 3200)


def test_restart_at_each_segment_end_reproduces_later_segments(joined: bytes) -> None:
    whole = segments(joined, 3200)
    for _, end, _ in whole[:-1]:
        resumed = [(s + end, e + end, pcm) for s, e, pcm in segments(joined[end * 2 :], 3200)]
        assert resumed == [seg for seg in whole if seg[0] >= end]


def test_segment_ends_are_frame_aligned(joined: bytes) -> None:
    frame = Segmenter(RATE).frame_samples
    assert frame == 480  # 30 ms
    assert all(end % frame == 0 for _, end, _ in segments(joined, 3200)[:-1])


def test_long_speech_is_cut_at_max_segment_deterministically(joined: bytes) -> None:
    def cut(audio: bytes) -> list[tuple[int, int]]:
        segmenter = Segmenter(RATE, max_segment_s=3.0)
        found = segmenter.push(audio)
        return [(s.start, s.end) for s in found]

    bounds = cut(joined)
    assert all(end - start <= 3 * RATE for start, end in bounds)
    first_cut = bounds[0][1]
    assert first_cut - bounds[0][0] == 3 * RATE
    later = [(s + first_cut, e + first_cut) for s, e in cut(joined[first_cut * 2 :])]
    assert later == [b for b in bounds if b[0] >= first_cut]


def test_silence_gives_no_segment() -> None:
    segmenter = Segmenter(8000)
    assert segmenter.push(b"\0" * 16000 * 3) == []
    assert segmenter.finish() is None


def test_impossible_window_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid endpointer"):
        Segmenter(RATE, window_s=0.03)
