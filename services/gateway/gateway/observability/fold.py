"""Per-frame figures into metrics, once a second: the hot path only counts.

Each `LiveSession` counts the messages and bytes it reads in plain integers; the pod's
housekeeping tick (`SessionRegistry.tick`) hands every session to `SessionFolder.fold`,
which adds what changed since the last tick to the counters in one update each, and
keeps a few (time, audio received) samples per session: they date the audio that a
final covers, for the final-latency histogram, without a clock read per frame.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from gateway.observability import metrics

# One sample a tick: finals further back than this are dated at the oldest sample.
_SAMPLES = 24
# Labelled children looked up once, not per result.
_ADDED_INTERIM = metrics.ADDED_LATENCY.labels("interim")
_ADDED_FINAL = metrics.ADDED_LATENCY.labels("final")


class Session(Protocol):
    """What the folder reads of a `LiveSession`."""

    rx_messages: int
    rx_bytes: int
    started_at: float
    session_start_ms: int

    @property
    def audio_ms(self) -> int: ...

    @property
    def pending_count(self) -> int: ...


class _Track:
    __slots__ = ("audio_ms", "bytes", "first_sent", "messages", "samples")

    def __init__(self, session: Session) -> None:
        self.messages = 0
        self.bytes = 0
        self.audio_ms = session.session_start_ms
        self.first_sent = False
        self.samples: deque[tuple[float, int]] = deque(maxlen=_SAMPLES)
        self.samples.append((session.started_at, session.session_start_ms))


def arrival_time(samples: Iterable[tuple[float, int]], offset_ms: int, now: float) -> float:
    """When the received audio reached `offset_ms`, from the samples `(time, audio_ms)`
    (in order): between the two samples around it, the earlier of an even spread and a
    real-time pace from the first. Audio comes in frames, so an even spread would date
    audio that a frame just completed at `now`; a client streaming in real time sent it
    at the paced time, and one sending faster (a resume's replay) at the spread's.
    The oldest sample's time if it was reached before; `now` if it never was."""
    before: tuple[float, int] | None = None
    for at, audio_ms in samples:
        if audio_ms >= offset_ms:
            if before is None or audio_ms == before[1]:
                return at
            t0, a0 = before
            spread = t0 + (at - t0) * (offset_ms - a0) / (audio_ms - a0)
            paced = t0 + (offset_ms - a0) / 1000
            return min(spread, paced)
        before = (at, audio_ms)
    return now


class SessionFolder:
    """Folds the sessions' counters into the metrics; one per process (`FOLDER`)."""

    def __init__(self) -> None:
        self._tracks: dict[int, _Track] = {}
        # Messages sent are tallied here per result and folded with the rest.
        self.sent_messages = 0
        self.sent_bytes = 0
        self._folded_sent = (0, 0)

    def _track(self, session: Session) -> _Track:
        track = self._tracks.get(id(session))
        if track is None:
            track = self._tracks[id(session)] = _Track(session)
        return track

    def fold(self, sessions: Iterable[Session], now: float) -> None:
        """Add what every session counted since the last fold; sample its audio."""
        messages = nbytes = audio_ms = pending = 0
        for session in sessions:
            track = self._track(session)
            messages += session.rx_messages - track.messages
            nbytes += session.rx_bytes - track.bytes
            received = session.audio_ms
            audio_ms += received - track.audio_ms
            track.messages, track.bytes, track.audio_ms = (
                session.rx_messages, session.rx_bytes, received,
            )  # fmt: skip
            track.samples.append((now, received))
            pending += session.pending_count
        self._add(messages, nbytes, audio_ms)
        metrics.REDIS_PENDING_FINALS.set(pending)

    def close(self, session: Session) -> None:
        """The session left this process: fold what it counted since the last tick."""
        track = self._tracks.pop(id(session), None)
        if track is None:
            track = _Track(session)
        self._add(
            session.rx_messages - track.messages,
            session.rx_bytes - track.bytes,
            session.audio_ms - track.audio_ms,
        )

    def _add(self, messages: int, nbytes: int, audio_ms: int) -> None:
        if messages > 0:
            metrics.WS_RECEIVED_MESSAGES.inc(messages)
        if nbytes > 0:
            metrics.WS_RECEIVED_BYTES.inc(nbytes)
        if audio_ms > 0:
            metrics.AUDIO_RECEIVED.inc(audio_ms / 1000)
        sent = (self.sent_messages, self.sent_bytes)
        if sent != self._folded_sent:
            metrics.WS_SENT_MESSAGES.inc(sent[0] - self._folded_sent[0])
            metrics.WS_SENT_BYTES.inc(sent[1] - self._folded_sent[1])
            self._folded_sent = sent

    # ---- per result (never per frame) ------------------------------------------------

    def interim_sent(self, session: Session, received_at: float, size: int) -> None:
        """An interim went out; `received_at` is `time.perf_counter()` at its arrival
        from the backend."""
        _ADDED_INTERIM.observe(time.perf_counter() - received_at)
        self._sent(session, size)

    def final_sent(self, session: Session, received_at: float, end_ms: int, size: int) -> None:
        """A final covering audio up to `end_ms` went out (after its write to Redis)."""
        _ADDED_FINAL.observe(time.perf_counter() - received_at)
        track = self._sent(session, size)
        now = asyncio.get_running_loop().time()
        samples = [*track.samples, (now, session.audio_ms)]
        metrics.FINAL_LATENCY.observe(max(0.0, now - arrival_time(samples, end_ms, now)))

    def _sent(self, session: Session, size: int) -> _Track:
        self.sent_messages += 1
        self.sent_bytes += size
        track = self._track(session)
        if not track.first_sent:
            track.first_sent = True
            now = asyncio.get_running_loop().time()
            metrics.FIRST_INTERIM_LATENCY.observe(now - session.started_at)
        return track


FOLDER = SessionFolder()
