"""One load-generator session's bookkeeping, whatever its transport: when it opened,
whether it was admitted or refused, the frames it sent and the finals it got.

A session ends one of three ways: *refused* (the gateway answered a new session with
HTTP 503 before the upgrade, or with an `error` `capacity_exhausted` and close 1013: a
clear answer, not a failure, timed from the connect), *failed* (anything else that ends
it before `transcription_stopped`) or *complete*. An admitted session that ends without
every final it was owed has lost them (`finals_lost`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bench.frames import (
    FINAL_EVERY_MS,
    FRAME_MS,
    NOISE_FRAMES,
    expected_finals,
    frame_index_for,
)

if TYPE_CHECKING:
    from bench.loadgen import LoadGen

# The code of PROTOCOL.md's `error` that refuses a new session for lack of capacity.
CAPACITY_EXHAUSTED = "capacity_exhausted"
# HTTP status of a refusal before the upgrade; WebSocket close code of one after it.
REFUSED_HTTP_STATUS = 503
REFUSED_CLOSE_CODE = 1013


class Session:
    """What one session sent and received; the transport-specific parts subclass it."""

    def __init__(self, gen: LoadGen, index: int) -> None:
        self.gen = gen
        self.index = index
        # In frames of the run's size: the same place in the audio whatever the size.
        self.offset = (index * 7) % NOISE_FRAMES * FRAME_MS // gen.frame_ms
        self.opened_at = time.monotonic()
        self.refused_at: float | None = None
        self.sent_at: list[float] = []
        self.finals: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.streaming = False
        self.started = False
        self.stopped = False  # transcription_stopped (or, over gRPC, the call's end) seen
        self.settled = False
        self.stop_at = 0.0
        self.next_due = 0.0

    @property
    def refused(self) -> bool:
        return self.refused_at is not None

    def error(self, what: str) -> None:
        if self.refused:
            return  # the refusal was the answer; the close that follows is expected
        if not self.errors:  # the first cause; later ones follow from it
            self.errors.append(what)
        self.gen.session_settled(self)

    def refuse(self) -> None:
        """The server refused this new session for lack of capacity: timed, not an error."""
        if self.started or self.refused or self.errors:
            return
        self.refused_at = time.monotonic()
        self.streaming = False
        self.gen.session_settled(self)

    def refusal_ms(self) -> float | None:
        """How long the client waited for its refusal, from the connect."""
        if self.refused_at is None:
            return None
        return (self.refused_at - self.opened_at) * 1000.0

    def final(self, seq: int | None, end_ms: int) -> None:
        self.finals.append((time.monotonic(), end_ms))
        if seq is not None and seq != len(self.finals):
            self.error(f"seq {seq} after {len(self.finals) - 1} finals")

    def stop(self) -> None:
        self.streaming = False
        self.stop_at = time.monotonic()

    def expected_finals(self, frame_ms: int = FRAME_MS) -> int:
        return expected_finals(len(self.sent_at), FINAL_EVERY_MS // frame_ms)

    def finals_lost(self, frame_ms: int = FRAME_MS) -> int:
        """Finals an admitted session was owed for the audio it sent and never got."""
        if not self.started:
            return 0
        return max(0, self.expected_finals(frame_ms) - len(self.finals))

    def latencies(self, start: float, end: float, frame_ms: int = FRAME_MS) -> list[float]:
        sent_at = self.sent_at
        out = []
        for arrival, end_ms in self.finals:
            idx = frame_index_for(end_ms, frame_ms)
            if 0 <= idx < len(sent_at) and start <= sent_at[idx] <= end:
                if arrival >= self.stop_at > 0 and idx == len(sent_at) - 1:
                    continue  # the stop's flush of a partial window, not a steady final
                out.append((arrival - sent_at[idx]) * 1000.0)
        return out
