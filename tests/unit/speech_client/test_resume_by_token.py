"""Starting a stream mid-way, for a resume by token: skipped bytes, offsets, pacing."""

from __future__ import annotations

import pytest

from speech_client.pacing import Pacer
from speech_client.resume import ReplayBuffer, skip_bytes


def test_skip_bytes_drops_whole_frames_then_cuts_one() -> None:
    frames = [b"aaaa", b"bbbb", b"cccc"]
    assert list(skip_bytes(iter(frames), 6)) == [b"bb", b"cccc"]
    assert list(skip_bytes(iter(frames), 0)) == frames
    assert list(skip_bytes(iter(frames), 99)) == []


def test_replay_buffer_starts_at_the_committed_offset() -> None:
    replay = ReplayBuffer()
    replay.skip_to(3200)
    assert (replay.start, replay.end) == (3200, 3200)
    assert replay.append(b"x" * 100) == 3300
    assert list(replay.since(3200)) == [(3200, b"x" * 100)]
    with pytest.raises(ValueError, match="empty"):
        replay.skip_to(0)


def test_pacer_from_an_origin_is_due_from_now() -> None:
    now = [100.0]
    pacer = Pacer(32000, 1.0, clock=lambda: now[0], origin_offset=320_000)  # 10 s in
    assert pacer.delay(320_000) == 0.0
    assert pacer.delay(320_000 + 32000) == pytest.approx(1.0)
