"""One-call helpers on top of `Transcription`: stream an `Audio` and get its finals."""

from __future__ import annotations

from dataclasses import dataclass, field

from speech_client.audio import DEFAULT_FRAME_MS, Audio
from speech_client.client import ClientOptions, Transcription
from speech_client.config import TranscriptionConfig
from speech_client.events import Transcript, TranscriptionStopped


@dataclass(slots=True)
class TranscriptionResult:
    finals: list[Transcript] = field(default_factory=list)
    stopped: TranscriptionStopped | None = None
    reconnects: int = 0

    @property
    def text(self) -> str:
        """The finals' best transcripts, joined by spaces."""
        return " ".join(t.text for t in self.finals if t.text)


def transcribe(
    url: str,
    audio: Audio,
    *,
    frame_ms: int = DEFAULT_FRAME_MS,
    config: TranscriptionConfig | None = None,
    session_id: str | None = None,
    speed: float = 1.0,
    options: ClientOptions | None = None,
    resume_token: str | None = None,
) -> Transcription:
    """A session streaming `audio` in frames of `frame_ms`; use with `async with`. With
    `resume_token`, it resumes that session (`audio` is sent from its start)."""
    return Transcription(
        url,
        audio.frames(frame_ms),
        audio.format,
        config=config,
        session_id=session_id,
        speed=speed,
        options=options,
        resume_token=resume_token,
    )


async def transcribe_all(
    url: str,
    audio: Audio,
    *,
    frame_ms: int = DEFAULT_FRAME_MS,
    config: TranscriptionConfig | None = None,
    session_id: str | None = None,
    speed: float = 1.0,
    options: ClientOptions | None = None,
) -> TranscriptionResult:
    """Stream `audio` and return its finals and summary; raises TranscriptionError."""
    result = TranscriptionResult()
    session = transcribe(
        url,
        audio,
        frame_ms=frame_ms,
        config=config,
        session_id=session_id,
        speed=speed,
        options=options,
    )
    async with session:
        async for event in session:
            if isinstance(event, Transcript) and event.is_final:
                result.finals.append(event)
            elif isinstance(event, TranscriptionStopped):
                result.stopped = event
    result.reconnects = session.reconnects
    return result
