"""The microphone as an audio source: `pip install 'speech-client[mic]'` (sounddevice, on
the system's PortAudio: Debian's libportaudio2).

    async with Microphone(AudioFormat("pcm16", 16000, 1), frame_ms=100) as mic:
        async with Transcription(url, mic, mic.format) as session: ...

PortAudio calls back from its own thread with each block; the blocks cross to the event
loop through a bounded queue. `stop()` ends the iteration after the audio captured so far.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from speech_client.audio import AudioError, AudioFormat

# Frames waiting for the connection: past this (minutes of audio), the microphone's audio
# would be dropped, and the session says so instead of silently losing it.
MAX_QUEUED_FRAMES = 3000


class MicrophoneError(AudioError):
    """No microphone could be opened, or its audio could not be kept."""


class Microphone:
    """Captures 16-bit PCM from an input device; an async iterable of frames."""

    def __init__(
        self, audio_format: AudioFormat, *, frame_ms: int = 100, device: int | str | None = None
    ) -> None:
        if audio_format.encoding != "pcm16":
            raise MicrophoneError("the microphone gives pcm16 audio only")
        self.format = audio_format
        self._frame_samples = audio_format.frame_bytes(frame_ms) // audio_format.block_bytes
        self._device = device
        # Bounded by `_put` (MAX_QUEUED_FRAMES of audio), so that the end always fits.
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None
        self._overflowed = False

    async def __aenter__(self) -> Microphone:
        self._loop = asyncio.get_running_loop()
        self._stream = self._open_stream()
        return self

    def _open_stream(self) -> Any:
        """PortAudio's input stream, started, calling `on_audio` with each block."""
        try:
            import sounddevice  # type: ignore[import-untyped]  # optional: only here
        except (ImportError, OSError) as e:
            raise MicrophoneError(
                f"no microphone support: {e} (install speech-client[mic] and PortAudio)"
            ) from e
        try:
            stream = sounddevice.RawInputStream(
                samplerate=self.format.sample_rate_hz,
                channels=self.format.channels,
                dtype="int16",
                blocksize=self._frame_samples,
                device=self._device,
                callback=self.on_audio,
            )
            stream.start()
        except Exception as e:  # sounddevice.PortAudioError, ValueError for a bad device
            raise MicrophoneError(f"cannot open the microphone: {e}") from e
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def on_audio(self, data: Any, frames: int, time: Any, status: Any) -> None:
        """PortAudio's callback, on its own thread: hand the block to the event loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._put, bytes(data))

    def _put(self, frame: bytes) -> None:
        if self._queue.qsize() >= MAX_QUEUED_FRAMES:
            self._overflowed = True
            return
        self._queue.put_nowait(frame)

    def stop(self) -> None:
        """End the stream after what was captured so far (safe from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._put_end)

    def _put_end(self) -> None:
        if self._stream is not None:
            self._stream.stop()
        self._queue.put_nowait(None)

    def __aiter__(self) -> Microphone:
        return self

    async def __anext__(self) -> bytes:
        if self._overflowed:
            raise MicrophoneError("microphone audio was dropped: the connection fell behind")
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item
