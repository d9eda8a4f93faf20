"""A file's transcript: segments (one per final result) with their words, in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TimedWord:
    word: str
    start: float  # seconds from the start of the file
    end: float


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    confidence: float
    words: tuple[TimedWord, ...] = ()


@dataclass(slots=True)
class FileTranscript:
    language: str
    duration: float = 0.0
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[TimedWord]:
        return [w for s in self.segments for w in s.words]
