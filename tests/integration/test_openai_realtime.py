"""`/v1/realtime?intent=transcription` through NGINX with the official `openai` package's
realtime client and NVIDIA's `riva.client.realtime`, both unchanged: their events in and
out, the gateway's sessions underneath."""

from __future__ import annotations

import argparse
import asyncio
import base64
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import openai
import pytest
import soxr
from riva.client.asr import AudioChunkFileIterator
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc
from riva.client.realtime import RealtimeClientASR

from gateway.backends.riva_config import streaming_config
from gateway.protocol import TranscriptionConfig
from tests.support.audio import goforward, silence
from tests.support.browser import write_wav
from tests.support.fixtures_gateway import gateways_behind_nginx
from tests.support.processes import Proc

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # G.711 for the pcmu case; still in Python 3.11's standard library

pytestmark = pytest.mark.integration

GOFORWARD_TEXT = "go forward ten meters"
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


@pytest.fixture(scope="module")
def base_url(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[str]:
    with gateways_behind_nginx(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        names=["gw-realtime"],
    ) as (_, nginx):
        yield f"http://127.0.0.1:{nginx.port}/v1"


def pcm_24k(pcm16k: bytes) -> bytes:
    samples = np.frombuffer(pcm16k, dtype="<i2")
    return bytes(soxr.resample(samples, 16000, 24000).astype("<i2").tobytes())


async def events_until(connection: Any, kind: str, wait_s: float = 30.0) -> list[Any]:
    events: list[Any] = []
    async with asyncio.timeout(wait_s):
        while not events or events[-1].type != kind:
            events.append(await connection.recv())
    return events


async def send_audio(connection: Any, audio: bytes, chunk: int) -> None:
    for i in range(0, len(audio), chunk):
        await connection.input_audio_buffer.append(
            audio=base64.b64encode(audio[i : i + chunk]).decode()
        )


def session_update(fmt: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "transcription",
        "audio": {
            "input": {
                "format": fmt,
                "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            }
        },
    }


async def test_pcm_24k_with_commit(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        await connection.session.update(
            session=session_update({"type": "audio/pcm", "rate": 24000})
        )
        updated = await events_until(connection, "session.updated")
        assert updated[-1].session.audio.input.format.rate == 24000
        await send_audio(connection, pcm_24k(goforward()), 4800)
        await connection.input_audio_buffer.commit()
        events = await events_until(connection, COMPLETED)
    kinds = [e.type for e in events]
    assert kinds[0] == "input_audio_buffer.committed"  # at once, on the client's commit
    completed = events[-1]
    assert completed.transcript == GOFORWARD_TEXT
    assert completed.item_id == events[0].item_id
    deltas = [e.delta for e in events if e.type == DELTA and e.item_id == completed.item_id]
    assert "".join(deltas) == GOFORWARD_TEXT


async def server_transcript(target: str, audio: bytes, config: TranscriptionConfig) -> list[str]:
    """The speech server's own finals for `audio` in `config`'s encoding, over gRPC."""

    async def requests() -> AsyncIterator[asr.StreamingRecognizeRequest]:
        yield asr.StreamingRecognizeRequest(streaming_config=streaming_config(config))
        for i in range(0, len(audio), 800):
            yield asr.StreamingRecognizeRequest(audio_content=audio[i : i + 800])

    async with grpc.aio.insecure_channel(target) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        return [
            r.alternatives[0].transcript
            async for response in stub.StreamingRecognize(requests(), timeout=60)
            for r in response.results
            if r.is_final and r.alternatives[0].transcript.strip()
        ]


async def test_pcmu_without_commit_the_server_endpoints(base_url: str, asr_server: Proc) -> None:
    """Without a commit, each utterance the recogniser ends is committed by the server."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused")
    pcm8k, _ = audioop.ratecv(goforward() + silence(1500), 2, 1, 16000, 8000, None)
    ulaw = audioop.lin2ulaw(pcm8k, 2)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        await connection.recv()
        await connection.session.update(session=session_update({"type": "audio/pcmu"}))
        await events_until(connection, "session.updated")
        await send_audio(connection, ulaw, 800)
        events = await events_until(connection, COMPLETED)
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    assert [c.item_id for c in committed] == [events[-1].item_id]
    assert committed[0].previous_item_id is None
    # G.711 at 8 kHz loses detail: the reference is the speech server's own transcript of
    # the same mu-law audio.
    reference = await server_transcript(
        f"127.0.0.1:{asr_server.port}",
        ulaw,
        TranscriptionConfig(encoding="mulaw", sample_rate_hz=8000),
    )
    assert [events[-1].transcript] == reference
    assert reference[0].startswith("go forward")


async def test_bad_events_get_openai_errors_and_the_socket_lives(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        await connection.recv()
        await connection.input_audio_buffer.commit()
        error = await connection.recv()
        assert (error.type, error.error.code) == ("error", "input_audio_buffer_commit_empty")
        await connection.send({"type": "response.create"})  # not a transcription event
        error = await connection.recv()
        assert error.error.code == "unsupported_event"
        await connection.session.update(session=session_update({"type": "audio/opus"}))
        error = await connection.recv()
        assert error.error.code == "invalid_session"
        # Audio before any session.update starts a session with the defaults (PCM, 24 kHz).
        await send_audio(connection, pcm_24k(goforward()), 4800)
        await connection.input_audio_buffer.commit()
        events = await events_until(connection, COMPLETED)
        assert events[-1].transcript == GOFORWARD_TEXT


async def test_only_the_transcription_intent_is_served(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    with pytest.raises(Exception, match="400"):
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()


def riva_client_args(server: str) -> argparse.Namespace:
    """What `riva.client.realtime`'s command line gives its client, for a WAV file."""
    return argparse.Namespace(
        server=server, endpoint="/v1/realtime", query_params="intent=transcription",
        use_ssl=False, ssl_root_cert=None, ssl_client_cert=None, ssl_client_key=None,
        mint_api_key=None, mic=False, language_code="en-US", model_name=None, prompt=None,
        sample_rate_hz=16000, num_channels=1, max_alternatives=None,
        automatic_punctuation=None, word_time_offsets=True, profanity_filter=None,
        no_verbatim_transcripts=None, speaker_diarization=False, boosted_lm_words=None,
        custom_configuration=None, start_history=-1, start_threshold=-1.0, stop_history=-1,
        stop_history_eou=-1, stop_threshold=-1.0, stop_threshold_eou=-1.0,
    )  # fmt: skip


async def test_nvidia_riva_realtime_client_unchanged(base_url: str, tmp_path: Path) -> None:
    """NVIDIA's own client: POST transcription_sessions, the token sub-protocol,
    `transcription_session.update`, a commit per chunk, `input_audio_buffer.done`."""
    wav = write_wav(tmp_path / "goforward.wav", goforward() + silence(500))
    server = base_url.removeprefix("http://").removesuffix("/v1")
    client = RealtimeClientASR(riva_client_args(server))
    await client.connect()
    try:
        assert client.session_config["input_audio_params"]["sample_rate_hz"] == 16000
        with AudioChunkFileIterator(str(wav), 1600) as chunks:
            await asyncio.gather(client.send_audio_chunks(chunks), client.receive_responses())
    finally:
        await client.disconnect()
    assert client.final_transcript == GOFORWARD_TEXT
