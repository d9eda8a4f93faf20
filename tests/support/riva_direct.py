"""Calling a speech server directly over Riva's gRPC API: the reference the gateway's
output is compared with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from gateway.backends.riva_config import streaming_config
from gateway.protocol import TranscriptionConfig


async def direct_finals(
    target: str, audio_frames: Sequence[bytes], *, sample_rate: int = 16000
) -> list[tuple[str, int]]:
    """(transcript, end_ms) of each final the server gives for these frames."""
    # Exactly what the gateway sends for a default PCM16 session.
    config = streaming_config(TranscriptionConfig(sample_rate_hz=sample_rate))

    async def requests() -> AsyncIterator[asr.StreamingRecognizeRequest]:
        yield asr.StreamingRecognizeRequest(streaming_config=config)
        for frame in audio_frames:
            yield asr.StreamingRecognizeRequest(audio_content=frame)

    finals: list[tuple[str, int]] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        async for response in stub.StreamingRecognize(requests(), timeout=120):
            for result in response.results:
                if result.is_final and result.alternatives[0].transcript.strip():
                    finals.append(
                        (result.alternatives[0].transcript, round(result.audio_processed * 1000))
                    )
    return finals
