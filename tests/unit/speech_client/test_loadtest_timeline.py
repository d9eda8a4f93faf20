from __future__ import annotations

from speech_client.audio import AudioFormat
from speech_client.loadtest.timeline import RING_SECONDS, SendTimes, timed_frames

PCM16 = AudioFormat()  # 16 kHz mono: 32 bytes per ms
FRAME = 3200  # 100 ms


def times_for(frames: int, frame_ms: int = 100) -> SendTimes:
    return SendTimes(PCM16, PCM16.frame_bytes(frame_ms), frames, frame_ms)


def test_end_ms_maps_to_the_frame_that_held_the_audio_before_it() -> None:
    times = times_for(10)
    for index in range(5):
        times.record(index, 100.0 + index)
    assert times.sent_at(100) == 100.0  # the end of frame 0
    assert times.sent_at(150) == 101.0  # into frame 1: frame 1 had to be sent
    assert times.sent_at(200) == 101.0
    assert times.sent_at(500) == 104.0
    assert times.sent_at(0) == 100.0


def test_a_final_rounded_up_by_a_millisecond_keeps_its_frame() -> None:
    times = times_for(10)
    times.record(0, 1.0)
    times.record(1, 2.0)
    assert times.sent_at(201) == 2.0


def test_audio_not_sent_yet_has_no_send_time() -> None:
    times = times_for(10)
    times.record(0, 1.0)
    assert times.sent_at(150) is None
    assert times_for(10).sent_at(50) is None


def test_the_ring_forgets_frames_older_than_its_capacity() -> None:
    frames = (RING_SECONDS + 10) * 10  # 100 ms frames
    times = times_for(frames)
    for index in range(frames):
        times.record(index, float(index))
    last_ms = frames * 100
    assert times.sent_at(last_ms) == frames - 1
    assert times.sent_at(last_ms - RING_SECONDS * 1000 + 100) == frames - RING_SECONDS * 10
    assert times.sent_at(last_ms - RING_SECONDS * 1000) is None
    assert times.sent_at(1000) is None


def test_the_ring_is_no_larger_than_the_session() -> None:
    times = times_for(3)
    for index in range(3):
        times.record(index, float(index))
    assert [times.sent_at(ms) for ms in (100, 200, 300)] == [0.0, 1.0, 2.0]


def test_each_frame_is_timed_when_the_next_one_is_asked_for() -> None:
    times = times_for(3)
    clock = iter([10.0, 20.0, 30.0]).__next__
    frames = timed_frames([b"a" * FRAME, b"b" * FRAME, b"c" * FRAME], times, clock)
    assert next(frames) == b"a" * FRAME
    assert times.sent == 0  # taken, not sent yet
    next(frames)
    assert (times.sent, times.sent_at(100)) == (1, 10.0)
    next(frames)
    assert list(frames) == []  # the last frame is timed when the sender asks for more
    assert (times.sent, times.sent_at(300)) == (3, 30.0)
