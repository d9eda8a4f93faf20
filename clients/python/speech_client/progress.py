"""A progress bar on stderr for long files: how much of the audio is transcribed."""

from __future__ import annotations

from typing import TextIO

from speech_client.events import AudioCommitted, Event, Transcript

_WIDTH = 30


class ProgressBar:
    """Advances with each final's end and each `audio_committed` offset."""

    def __init__(self, err: TextIO, total_ms: float) -> None:
        self._err = err
        self._total_ms = max(1.0, total_ms)
        self._done_ms = 0.0
        self._shown = False

    def show(self, event: Event) -> None:
        if isinstance(event, AudioCommitted):
            done = event.committed_ms
        elif isinstance(event, Transcript) and event.is_final:
            done = event.end_ms
        else:
            return
        if done > self._done_ms:
            self._done_ms = min(float(done), self._total_ms)
            self._draw()

    def _draw(self) -> None:
        share = self._done_ms / self._total_ms
        filled = round(share * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        self._err.write(
            f"\r[{bar}] {share:4.0%} {self._done_ms / 1000:.1f}/{self._total_ms / 1000:.1f} s"
        )
        self._err.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._err.write("\n")
            self._err.flush()
