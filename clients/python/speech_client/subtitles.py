"""SRT and WebVTT output: one cue per final, printed as it lands, timed by its words when
the server sent word times, else by the final's own offsets."""

from __future__ import annotations

from typing import Literal, TextIO

from speech_client.events import Event, Transcript

SubtitleFormat = Literal["srt", "vtt"]


def timestamp(ms: int, decimal: str) -> str:
    hours, ms = divmod(max(0, ms), 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal}{ms:03d}"


def cue_times(final: Transcript) -> tuple[int, int]:
    words = final.alternatives[0].words if final.alternatives else ()
    if words:
        return words[0].start_ms, words[-1].end_ms
    return final.start_ms, final.end_ms


class SubtitlePrinter:
    """Writes a cue for every final with text, numbered from 1 (SRT) or after the WebVTT
    header; interims are not shown."""

    def __init__(self, out: TextIO, kind: SubtitleFormat) -> None:
        self._out = out
        self._kind = kind
        self._count = 0
        if kind == "vtt":
            out.write("WEBVTT\n\n")

    def show(self, event: Event) -> None:
        if not (isinstance(event, Transcript) and event.is_final and event.text.strip()):
            return
        self._count += 1
        start, end = cue_times(event)
        decimal = "," if self._kind == "srt" else "."
        number = f"{self._count}\n" if self._kind == "srt" else ""
        self._out.write(
            f"{number}{timestamp(start, decimal)} --> {timestamp(end, decimal)}\n"
            f"{event.text.strip()}\n\n"
        )
        self._out.flush()

    def close(self) -> None:
        self._out.flush()
