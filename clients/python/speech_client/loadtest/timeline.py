"""When each frame of a session had been sent: the reference point of final latency.

Final latency = the time a final arrived minus the time the audio up to its `end_ms` had
been sent, i.e. the send time of the frame holding the audio just before `end_ms`.
The sender records one float per frame in a preallocated ring; the lookup happens only
when a final arrives.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator, Sequence

from speech_client.audio import AudioFormat

# Finals come seconds after their audio; a final for audio older than this (sent before
# the ring wrapped) is counted without a latency.
RING_SECONDS = 120


class SendTimes:
    __slots__ = ("_capacity", "_end_tolerance", "_format", "_frame_bytes", "_times", "sent")

    def __init__(self, fmt: AudioFormat, frame_bytes: int, frames: int, frame_ms: int) -> None:
        self._format = fmt
        self._frame_bytes = frame_bytes
        self._capacity = max(1, min(frames, -(-RING_SECONDS * 1000 // frame_ms)))
        self._times = array("d", bytes(8 * self._capacity))
        # end_ms is whole milliseconds: a server rounding up must not point at the frame
        # after the one that held the audio.
        self._end_tolerance = fmt.ms_to_bytes(1)
        self.sent = 0  # frames sent so far

    def record(self, index: int, at: float) -> None:
        self._times[index % self._capacity] = at
        self.sent = index + 1

    def sent_at(self, end_ms: int) -> float | None:
        """When the audio up to `end_ms` had been sent; None if not known (not sent, or
        so long ago that the ring has dropped it)."""
        offset = max(0, self._format.ms_to_bytes(end_ms) - self._end_tolerance)
        index = max(0, -(-offset // self._frame_bytes) - 1)  # the frame holding offset - 1
        if index >= self.sent or index < self.sent - self._capacity:
            return None
        return self._times[index % self._capacity]


def timed_frames(
    frames: Sequence[bytes], times: SendTimes, clock: Callable[[], float] = time.monotonic
) -> Iterator[bytes]:
    """`frames`, recording each one's send time in `times`.

    The SDK takes a frame from a plain iterator, paces it, sends it, and takes the next
    with no await in between: so the moment the next frame is asked for is the moment
    this one had been sent (after a resume's re-send, too: then later, as it should be).
    """
    record = times.record
    for index, frame in enumerate(frames):
        yield frame
        record(index, clock())
