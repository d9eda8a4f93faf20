"""Server events of PROTOCOL.md version 1 as small typed records.

Each record keeps the JSON object it was parsed from (`raw`), so a caller can print or
store the event exactly as the server sent it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ProtocolViolation(ValueError):
    """The server sent something that is not a version 1 event."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start_ms: int
    end_ms: int
    confidence: float
    speaker: int | None = None


@dataclass(frozen=True, slots=True)
class Alternative:
    transcript: str
    confidence: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Transcript:
    seq: int
    is_final: bool
    channel: int
    start_ms: int
    end_ms: int
    stability: float
    alternatives: tuple[Alternative, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The best alternative's transcript, or "" when there is none."""
        return self.alternatives[0].transcript if self.alternatives else ""


@dataclass(frozen=True, slots=True)
class TranscriptionStarted:
    session_id: str
    resume_token: str
    config: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TranscriptionResumed:
    session_id: str
    resume_from_ms: int
    replayed_finals: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AudioCommitted:
    committed_ms: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Reconnect:
    reason: str
    resume_token: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    code: str
    message: str
    retryable: bool
    retry_after_s: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TranscriptionStopped:
    session_id: str
    audio_ms: int
    finals: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event this client does not know; kept so that a newer server does not break it."""

    event: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


Event = (
    TranscriptionStarted
    | TranscriptionResumed
    | Transcript
    | AudioCommitted
    | Reconnect
    | ErrorEvent
    | TranscriptionStopped
    | UnknownEvent
)


def _word(w: dict[str, Any]) -> Word:
    speaker = w.get("speaker")
    return Word(
        str(w["word"]),
        int(w["start_ms"]),
        int(w["end_ms"]),
        float(w["confidence"]),
        None if speaker is None else int(speaker),
    )


def _alternative(a: dict[str, Any]) -> Alternative:
    words = tuple(_word(w) for w in a.get("words") or ())
    return Alternative(str(a["transcript"]), float(a.get("confidence", 0.0)), words)


def _parse(obj: dict[str, Any]) -> Event:
    match obj["event"]:
        case "transcript":
            return Transcript(
                seq=int(obj["seq"]),
                is_final=bool(obj["is_final"]),
                channel=int(obj.get("channel", 0)),
                start_ms=int(obj["start_ms"]),
                end_ms=int(obj["end_ms"]),
                stability=float(obj.get("stability", 0.0)),
                alternatives=tuple(_alternative(a) for a in obj["alternatives"]),
                raw=obj,
            )
        case "audio_committed":
            return AudioCommitted(int(obj["committed_ms"]), obj)
        case "transcription_started":
            return TranscriptionStarted(
                str(obj["session_id"]), str(obj["resume_token"]), dict(obj["config"]), obj
            )
        case "transcription_resumed":
            return TranscriptionResumed(
                str(obj["session_id"]),
                int(obj["resume_from_ms"]),
                int(obj.get("replayed_finals", 0)),
                obj,
            )
        case "reconnect":
            return Reconnect(str(obj.get("reason", "")), str(obj["resume_token"]), obj)
        case "error":
            retry_after = obj.get("retry_after_s")
            return ErrorEvent(
                str(obj["code"]),
                str(obj.get("message", "")),
                bool(obj.get("retryable", False)),
                None if retry_after is None else float(retry_after),
                obj,
            )
        case "transcription_stopped":
            return TranscriptionStopped(
                str(obj["session_id"]), int(obj["audio_ms"]), int(obj["finals"]), obj
            )
        case other:
            return UnknownEvent(str(other), obj)


def parse_event(obj: object) -> Event:
    """One server event from its decoded JSON; ProtocolViolation if it is malformed."""
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        raise ProtocolViolation(f"not an event object: {obj!r:.200}")
    try:
        return _parse(obj)
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolViolation(f"malformed {obj['event']} event ({e!r}): {obj!r:.200}") from e
