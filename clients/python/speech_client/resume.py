"""What a client keeps to resume a session losslessly: its replay buffer and last seq."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator


class ReplayBuffer:
    """The audio sent but not yet covered by persisted finals, addressed by byte offset.

    Frames are appended as they are sent; `commit` drops what `audio_committed` says the
    server has persisted; after a resume, `since` gives the audio to send again.

    At most `limit_bytes` are held: past it the oldest audio is dropped even though it
    is not committed (a server that commits nothing for that long: silence, music, its
    store down), so memory stays bounded; a resume that needs the dropped audio then fails
    with `replay_unavailable` instead of silently losing it.
    """

    def __init__(self, limit_bytes: int | None = None) -> None:
        self._frames: deque[tuple[int, bytes]] = deque()  # (start offset, data)
        self._start = 0  # offset of the first byte still held
        self._end = 0  # offset just after the last byte appended
        self.limit_bytes = limit_bytes
        self.dropped_bytes = 0  # uncommitted audio dropped at the bound

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._end

    @property
    def size(self) -> int:
        return self._end - self._start

    def skip_to(self, offset: int) -> None:
        """Start the stream at byte `offset`: the audio before it was sent, and committed,
        by an earlier client of the session (a resume by token). Only before any append."""
        if self._end:
            raise ValueError("skip_to only applies to an empty stream")
        self._start = self._end = offset

    def append(self, frame: bytes) -> int:
        """Keep `frame` (the next audio of the stream); returns its end offset."""
        self._frames.append((self._end, frame))
        self._end += len(frame)
        limit = self.limit_bytes
        if limit is not None:
            frames = self._frames
            while len(frames) > 1 and self._end - self._start > limit:
                start, data = frames.popleft()
                self._start = start + len(data)
                self.dropped_bytes += len(data)
        return self._end

    def commit(self, offset: int) -> None:
        """Drop the audio before byte `offset`; a frame it splits keeps its tail."""
        offset = min(offset, self._end)
        frames = self._frames
        while frames and frames[0][0] + len(frames[0][1]) <= offset:
            frames.popleft()
        if frames and frames[0][0] < offset:
            start, data = frames[0]
            frames[0] = (offset, data[offset - start :])
        self._start = max(self._start, offset)

    def since(self, offset: int) -> Iterator[tuple[int, bytes]]:
        """(start offset, data) of the audio from byte `offset` on, as held now.

        Raises LookupError if that audio was already dropped: a lossless resume from
        `offset` is then impossible.
        """
        if offset < self._start:
            raise LookupError(
                f"audio from byte {offset} was dropped (buffer starts at {self._start})"
            )
        for start, data in list(self._frames):
            if start + len(data) <= offset:
                continue
            if start < offset:
                yield offset, data[offset - start :]
            else:
                yield start, data


class FinalsTracker:
    """The last final `seq` seen, which drops duplicates (after a resume) and stale interims.

    `seq` counts finals from 1 with no gaps and in order (PROTOCOL.md), so "seen" is
    "at most the last seen", and nothing else needs keeping.
    """

    def __init__(self) -> None:
        self.last_seq = 0

    def accept(self, seq: int, is_final: bool) -> bool:
        """Whether a transcript with this seq is new; records it if it is a final.

        An interim carries the seq its final will get, so an interim at or below the last
        final belongs to an utterance already final (replayed on a resume).
        """
        if seq <= self.last_seq:
            return False
        if is_final:
            self.last_seq = seq
        return True


def backoff_delay(
    attempt: int,
    *,
    base_s: float = 0.2,
    cap_s: float = 10.0,
    minimum_s: float = 0.0,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait before reconnect `attempt` (0 for the first): full jitter.

    Exponential growth spreads retries out; drawing the whole delay at random ("full
    jitter") keeps a fleet of clients cut off together by one pod's death from coming back
    in one burst. `minimum_s` honours a server's `retry_after_s`.
    """
    ceiling = min(cap_s, base_s * 2**attempt)
    return max(minimum_s, (rand or random).uniform(0, ceiling))


def skip_bytes(frames: Iterator[bytes], count: int) -> Iterator[bytes]:
    """`frames` without their first `count` bytes (a frame they split keeps its tail)."""
    for frame in frames:
        if count >= len(frame):
            count -= len(frame)
            continue
        yield frame[count:] if count else frame
        count = 0
