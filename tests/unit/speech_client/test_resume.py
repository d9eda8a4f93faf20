from __future__ import annotations

import random

import pytest

from speech_client.resume import FinalsTracker, ReplayBuffer, backoff_delay


def filled(*frames: bytes) -> ReplayBuffer:
    buffer = ReplayBuffer()
    for frame in frames:
        buffer.append(frame)
    return buffer


def test_commit_drops_whole_frames_before_the_offset() -> None:
    buffer = filled(b"aaaa", b"bbbb", b"cccc")
    buffer.commit(8)
    assert (buffer.start, buffer.end, buffer.size) == (8, 12, 4)
    assert list(buffer.since(8)) == [(8, b"cccc")]


def test_commit_inside_a_frame_keeps_its_tail() -> None:
    buffer = filled(b"aaaa", b"bcde")
    buffer.commit(6)
    assert list(buffer.since(6)) == [(6, b"de")]


def test_commit_never_moves_back_and_never_past_the_end() -> None:
    buffer = filled(b"aaaa")
    buffer.commit(3)
    buffer.commit(1)
    assert buffer.start == 3
    buffer.commit(100)
    assert (buffer.start, buffer.size) == (4, 0)


def test_since_starts_mid_frame() -> None:
    buffer = filled(b"abcd", b"efgh")
    assert list(buffer.since(2)) == [(2, b"cd"), (4, b"efgh")]
    assert list(buffer.since(8)) == []


def test_since_refuses_audio_already_dropped() -> None:
    buffer = filled(b"abcd", b"efgh")
    buffer.commit(4)
    with pytest.raises(LookupError):
        list(buffer.since(2))


def test_finals_seen_before_are_dropped_new_ones_kept() -> None:
    finals = FinalsTracker()
    assert finals.accept(1, True)
    assert finals.accept(2, True)
    assert not finals.accept(2, True)
    assert not finals.accept(1, True)
    assert finals.last_seq == 2


def test_interims_of_finished_utterances_are_dropped() -> None:
    finals = FinalsTracker()
    assert finals.accept(1, False)
    assert finals.last_seq == 0  # an interim does not count as seen
    assert finals.accept(1, True)
    assert not finals.accept(1, False)
    assert finals.accept(2, False)


def test_backoff_grows_is_capped_and_jittered() -> None:
    rand = random.Random(1)
    delays = [backoff_delay(n, base_s=1, cap_s=8, rand=rand) for n in range(10)]
    assert all(0 <= d <= 8 for d in delays)
    assert len(set(delays)) == len(delays)
    assert backoff_delay(0, base_s=1, rand=rand) <= 1


def test_backoff_honours_the_servers_retry_after() -> None:
    assert backoff_delay(0, base_s=0.1, minimum_s=3.0) == 3.0


def test_the_replay_buffer_stops_at_its_byte_bound() -> None:
    from speech_client.resume import ReplayBuffer

    buffer = ReplayBuffer(limit_bytes=1000)
    for _ in range(50):
        buffer.append(b"\x00" * 100)  # nothing ever committed
    assert buffer.size <= 1000
    assert buffer.dropped_bytes == 4000
    assert (buffer.start, buffer.end) == (4000, 5000)
    with pytest.raises(LookupError):
        list(buffer.since(0))
