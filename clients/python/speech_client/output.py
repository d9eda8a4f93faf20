"""How the CLI shows events: live text on a terminal, or JSON lines for programs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Protocol, TextIO

from speech_client.events import Event, Transcript, TranscriptionStopped

_CLEAR_LINE = "\r\x1b[K"  # back to column 0, erase to the end of the line


class Printer(Protocol):
    def show(self, event: Event) -> None: ...

    def close(self) -> None:
        """Leave the output tidy (no half-written interim line), also after an error."""


def _terminal_columns() -> int:
    return shutil.get_terminal_size().columns


class TextPrinter:
    """Finals one per line; on a terminal, the interim text updated in place below them."""

    def __init__(
        self,
        out: TextIO,
        *,
        interim: bool,
        channel_labels: bool = False,
        columns: Callable[[], int] = _terminal_columns,
    ) -> None:
        self._out = out
        self._interim = interim
        self._channel_labels = channel_labels
        self._columns = columns
        self._line_dirty = False  # an interim is on screen

    def _label(self, t: Transcript) -> str:
        return f"[ch{t.channel}] " if self._channel_labels else ""

    def show(self, event: Event) -> None:
        if not isinstance(event, Transcript):
            return
        text = self._label(event) + event.text
        if event.is_final:
            self._clear()
            if event.text:
                self._out.write(text + "\n")
                self._out.flush()
        elif self._interim:
            # A carriage return only reaches the start of the current screen line, so an
            # interim that wrapped could not be erased: show its most recent words only.
            width = max(1, self._columns() - 1)
            self._out.write(_CLEAR_LINE + (text[-width:] if len(text) > width else text))
            self._out.flush()
            self._line_dirty = True

    def _clear(self) -> None:
        if self._line_dirty:
            self._out.write(_CLEAR_LINE)
            self._line_dirty = False

    def close(self) -> None:
        self._clear()
        self._out.flush()


class JsonPrinter:
    """One JSON line per final (the event as received), then the `transcription_stopped`."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def show(self, event: Event) -> None:
        if (isinstance(event, Transcript) and event.is_final) or isinstance(
            event, TranscriptionStopped
        ):
            self._out.write(json.dumps(event.raw, ensure_ascii=False) + "\n")
            self._out.flush()

    def close(self) -> None:
        self._out.flush()
