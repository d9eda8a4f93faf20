"""One file from upload to segments: decode and chunk in a worker thread, recognise each
chunk in turn. Memory holds one chunk, whatever the file's length."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

from gateway.config import FileSettings
from gateway.files.chunking import BYTES_PER_MS, chunk_pcm
from gateway.files.decode import decode_pcm16
from gateway.files.recognize import ChunkRecognizer
from gateway.files.transcript import FileTranscript, Segment


class FileTranscription:
    """Segments of one file, in order; `transcript` fills as they come."""

    def __init__(
        self,
        file: BinaryIO,
        recognizer: ChunkRecognizer,
        settings: FileSettings,
        language: str,
    ) -> None:
        self._chunks: Iterator[tuple[int, bytes]] = chunk_pcm(
            decode_pcm16(file, max_duration_s=settings.max_duration_s),
            chunk_ms=round(settings.chunk_s * 1000),
            search_ms=round(settings.cut_search_s * 1000),
        )
        self._recognizer = recognizer
        self._first: tuple[int, bytes] | None = None
        self.transcript = FileTranscript(language=language)

    async def _next_chunk(self) -> tuple[int, bytes] | None:
        # Decoding is CPU work in C: off the event loop.
        return await asyncio.to_thread(next, self._chunks, None)

    async def open(self) -> None:
        """Decode the first chunk now, so that a file that is not audio fails before a
        streamed response has begun."""
        self._first = await self._next_chunk()

    async def segments(self) -> AsyncIterator[Segment]:
        chunk = self._first if self._first is not None else await self._next_chunk()
        while chunk is not None:
            offset_ms, pcm = chunk
            self.transcript.duration = (offset_ms + len(pcm) / BYTES_PER_MS) / 1000
            for segment in await self._recognizer.recognize(offset_ms, pcm):
                self.transcript.segments.append(segment)
                yield segment
            chunk = await self._next_chunk()

    async def run(self) -> FileTranscript:
        async for _ in self.segments():
            pass
        return self.transcript
