from __future__ import annotations

import pytest

from speech_client.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_frame_is_due_at_its_end_offset_in_real_time() -> None:
    clock = FakeClock()
    pacer = Pacer(32000, 1.0, clock)
    assert pacer.delay(3200) == pytest.approx(0.1)  # the first 100 ms frame: after 100 ms
    clock.now += 0.25
    assert pacer.delay(9600) == pytest.approx(0.05)


def test_speed_divides_the_wait() -> None:
    clock = FakeClock()
    assert Pacer(32000, 4.0, clock).delay(32000) == pytest.approx(0.25)


def test_late_frames_are_due_at_once_so_a_backlog_catches_up() -> None:
    clock = FakeClock()
    pacer = Pacer(32000, 1.0, clock)
    clock.now += 5
    assert pacer.delay(32000) == 0.0


@pytest.mark.parametrize("speed", [0.0, -1.0])
def test_speed_zero_or_less_means_no_pacing(speed: float) -> None:
    pacer = Pacer(32000, speed, FakeClock())
    assert not pacer.paced
    assert pacer.delay(10**9) == 0.0
