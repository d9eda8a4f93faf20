"""Riva's offline `Recognize`, one call per chunk, on the gateway's balanced endpoints."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_audio_pb2 as audio

from gateway.backends.riva import RivaBackend
from gateway.files.chunking import BYTES_PER_MS
from gateway.files.decode import TARGET_RATE
from gateway.files.transcript import Segment, TimedWord

log = logging.getLogger(__name__)

# Errors after which another endpoint may well succeed.
_RETRY_ELSEWHERE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


class RecognizeFailed(Exception):
    """The speech backend could not recognise a chunk."""

    def __init__(self, status: grpc.StatusCode, detail: str) -> None:
        # The message goes to the client: a gRPC status's details may name internal
        # addresses, so they stay in `detail`, for the log.
        super().__init__(f"speech backend error ({status.name})")
        self.status = status
        self.detail = detail


def recognition_config(language: str, model: str) -> asr.RecognitionConfig:
    return asr.RecognitionConfig(
        encoding=audio.AudioEncoding.LINEAR_PCM,
        sample_rate_hertz=TARGET_RATE,
        language_code=language,
        max_alternatives=1,
        enable_automatic_punctuation=True,
        # Always: SRT and WebVTT cue times come from the words.
        enable_word_time_offsets=True,
        audio_channel_count=1,
        model=model,
    )


class ChunkRecognizer:
    """Recognises chunks of one file in order, numbering its segments."""

    def __init__(
        self,
        backend: RivaBackend,
        config: asr.RecognitionConfig,
        metadata: Sequence[tuple[str, str]],
        *,
        timeout_s: float,
    ) -> None:
        self._backend = backend
        self._config = config
        self._metadata = tuple(metadata) or None
        self._timeout_s = timeout_s
        self._next_id = 0

    async def recognize(self, offset_ms: int, pcm: bytes) -> list[Segment]:
        """The segments of one chunk that starts `offset_ms` into the file."""
        request = asr.RecognizeRequest(config=self._config, audio=pcm)
        balancer = self._backend.balancer
        endpoint = balancer.pick()
        for attempt in range(2):
            endpoint.active += 1
            try:
                response = await endpoint.client.asr.Recognize(
                    request, timeout=self._timeout_s, metadata=self._metadata
                )
            except grpc.aio.AioRpcError as exc:
                if attempt == 0 and exc.code() in _RETRY_ELSEWHERE:
                    balancer.mark_failed(endpoint)
                    endpoint = balancer.pick(exclude=endpoint)
                    continue
                log.warning("Recognize failed (%s): %s", exc.code().name, exc.details())
                raise RecognizeFailed(exc.code(), exc.details() or "") from exc
            finally:
                endpoint.active -= 1
            balancer.mark_ok(endpoint)
            return self._segments(offset_ms, len(pcm) // BYTES_PER_MS, response)
        raise AssertionError("unreachable")

    def _segments(
        self, offset_ms: int, chunk_ms: int, response: asr.RecognizeResponse
    ) -> list[Segment]:
        segments = []
        previous_end_ms = 0
        for result in response.results:
            if not result.alternatives or not result.alternatives[0].transcript.strip():
                continue
            best = result.alternatives[0]
            words = tuple(
                TimedWord(
                    w.word, (offset_ms + w.start_time) / 1000, (offset_ms + w.end_time) / 1000
                )
                for w in best.words
            )
            end_ms = round(result.audio_processed * 1000) or chunk_ms
            start = words[0].start if words else (offset_ms + previous_end_ms) / 1000
            end = words[-1].end if words else (offset_ms + end_ms) / 1000
            previous_end_ms = end_ms
            segments.append(
                Segment(self._next_id, start, end, best.transcript.strip(), best.confidence, words)
            )
            self._next_id += 1
        return segments
