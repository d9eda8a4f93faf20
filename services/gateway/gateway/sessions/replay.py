"""The gateway's replay buffer: audio sent to a backend stream after the last final, so
that a failed stream can be replayed into a new one on another endpoint."""

from __future__ import annotations

from collections import deque


class ReplayBuffer:
    """Frames covering session byte offsets [start, end), at most `limit` bytes; past it
    the oldest frames are dropped and `start` moves (a replay from before it is lost)."""

    __slots__ = ("_frames", "end", "limit", "start")

    def __init__(self, start: int, limit: int) -> None:
        self._frames: deque[bytes] = deque()
        self.start = start
        self.end = start
        self.limit = limit

    def append(self, frame: bytes) -> None:
        self._frames.append(frame)
        self.end += len(frame)
        if self.end - self.start > self.limit:
            self.start += len(self._frames.popleft())

    def trim(self, offset: int) -> None:
        """Drop whole frames that end at or before `offset`."""
        frames = self._frames
        while frames and self.start + len(frames[0]) <= offset:
            self.start += len(frames.popleft())

    def covers(self, offset: int) -> bool:
        return self.start <= offset <= self.end

    def since(self, offset: int) -> list[bytes]:
        """The audio from `offset` to the end (the first frame cut at `offset`)."""
        out: list[bytes] = []
        position = self.start
        for frame in self._frames:
            end = position + len(frame)
            if end > offset:
                out.append(frame[max(0, offset - position) :])
            position = end
        return out

    def reset(self, offset: int) -> None:
        self._frames.clear()
        self.start = self.end = offset
