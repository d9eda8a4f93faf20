"""Pacing audio at a multiple of real time, as a live source would deliver it."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """When each byte offset of the stream is due, relative to a fixed start.

    A live source can deliver a frame only once its last sample has been captured, so a
    frame is due at its *end* offset. The start never moves: after a reconnect the audio
    that "was captured" meanwhile is due at once, and the stream then continues in real
    time, exactly as a microphone's backlog would.
    """

    def __init__(
        self,
        bytes_per_second: int,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        origin_offset: int = 0,
    ) -> None:
        self._seconds_per_byte = 1 / (bytes_per_second * speed) if speed > 0 else 0.0
        self._clock = clock
        # A stream that starts at `origin_offset` (a resume by token) is due from now on.
        self._start = clock() - origin_offset * self._seconds_per_byte

    @property
    def paced(self) -> bool:
        return self._seconds_per_byte > 0

    def delay(self, end_offset: int) -> float:
        """Seconds to wait before sending the audio that ends at byte `end_offset`."""
        if not self.paced:
            return 0.0
        return max(0.0, self._start + end_offset * self._seconds_per_byte - self._clock())
