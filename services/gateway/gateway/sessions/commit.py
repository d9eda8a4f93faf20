"""How far a session's audio is covered by finals, per channel.

With one channel the commit point is the end of the last final. With two, each channel
has its own last final; a channel's utterance is open from its first interim after its
last final until its next final. Open utterances hold the commit point back (their audio
must be recognised again after a restart); a channel with none does not, so a channel
that stays silent never stops audio from being committed (PROTOCOL.md, "Resume").

After a restart at the commit point, a channel that was ahead of it recognises audio it
had already finished: its finals that end at or before its own last final are dropped.
The per-channel ends are persisted with the session (`encode`), so any pod can resume it.
"""

from __future__ import annotations


class ChannelCommits:
    __slots__ = ("_ends", "_open")

    def __init__(self, channels: int, base_ms: int, encoded: str = "") -> None:
        self._ends = [base_ms] * channels
        self._open = [False] * channels
        if encoded:
            for channel, value in enumerate(encoded.split(",")[:channels]):
                # Never before the point the session resumes from.
                self._ends[channel] = max(base_ms, int(value))

    def interim(self, channel: int) -> None:
        self._open[channel] = True

    def final(self, channel: int, end_ms: int) -> None:
        if end_ms > self._ends[channel]:
            self._ends[channel] = end_ms
        self._open[channel] = False

    def already_final(self, channel: int, end_ms: int) -> bool:
        """A final this session sent before a restart (a channel ahead of the commit point)."""
        return end_ms <= self._ends[channel] and len(self._ends) > 1

    def utterance_start(self, channel: int) -> int:
        return self._ends[channel]

    @property
    def committed_ms(self) -> int:
        ends = self._ends
        point = max(ends)
        for channel, is_open in enumerate(self._open):
            if is_open and ends[channel] < point:
                point = ends[channel]
        return point

    def encode(self) -> str:
        return ",".join(str(end) for end in self._ends)
