"""Clocks the housekeeping tick moves once a second for every session, so that nothing
per audio frame reads a clock or moves a timer: the session's idle deadline, and the
watch on its backend stream."""

from __future__ import annotations


class IdleClock:
    """A session is idle `timeout_s` after its last message (audio or any control message,
    `keepalive` included). The tick sees the message counter move, so the expiry comes
    between `timeout_s` and `timeout_s` + one tick after the last message."""

    __slots__ = ("_seen", "last_at", "timeout_s")

    def __init__(self, timeout_s: float, now: float) -> None:
        self.timeout_s = timeout_s
        self.last_at = now
        self._seen = 0

    def expired(self, now: float, messages: int) -> bool:
        if messages != self._seen:
            self._seen = messages
            self.last_at = now
            return False
        return now - self.last_at >= self.timeout_s


class BackendWatch:
    """A backend stream that takes audio and answers nothing for `timeout_s` is hung; and
    when audio last went in (a stream that the backend ends while no audio flows was
    released for quiet, not failed)."""

    __slots__ = ("_answered", "_fed", "_unanswered_since", "fed_at", "timeout_s")

    def __init__(self, timeout_s: float, now: float) -> None:
        self.timeout_s = timeout_s
        self.fed_at = now
        self._fed = 0
        self._answered = 0
        self._unanswered_since: float | None = None

    def hung(self, now: float, fed: int, answered: int) -> bool:
        audio_went_in = fed != self._fed
        if audio_went_in:
            self._fed = fed
            self.fed_at = now
        if answered != self._answered:
            self._answered = answered
            self._unanswered_since = None
            return False
        if audio_went_in and self._unanswered_since is None:
            self._unanswered_since = now
        since = self._unanswered_since
        return since is not None and now - since >= self.timeout_s

    def restarted(self) -> None:
        """A new backend stream: its wait for an answer starts with its first audio."""
        self._unanswered_since = None
