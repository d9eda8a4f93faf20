"""The interface every engine implements, so the servicer has one code path."""

from __future__ import annotations

from typing import Protocol

from asr_cpu.results import Result
from asr_cpu.stream_config import StreamSettings


class StreamRecognizer(Protocol):
    """Recognition state of one stream (or one batch request)."""

    def feed(self, audio: bytes) -> list[Result]:
        """Add encoded audio as received; return the results it produced, in order."""
        ...

    def finish(self) -> list[Result]:
        """The client half-closed: return the finals for whatever audio is pending."""
        ...

    def close(self) -> None:
        """Give back borrowed resources (always called, also after errors)."""
        ...


class Engine(Protocol):
    model_name: str
    # True when feed/finish/open_stream do real work and must run off the event loop.
    blocking: bool

    def open_stream(self, settings: StreamSettings) -> StreamRecognizer:
        """Raises `ConfigError` for settings this engine cannot honour."""
        ...

    def describe(self) -> dict[str, str]:
        """Parameters reported by GetRivaSpeechRecognitionConfig."""
        ...
