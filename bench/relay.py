"""The thinnest honest relay: the floor the gateway's per-stream cost is compared with.

    python -m bench.relay --port 8100 --target 127.0.0.1:50051

A bare ASGI app under uvicorn with what the gateway's worker uses (uvloop, httptools,
`websockets-sansio`, no permessage-deflate), one `grpc.aio` StreamingRecognize call per
socket on one shared channel. No state, no Redis, no metrics, no validation beyond what
it needs to run: per audio frame one socket read and one gRPC write; per result one
`transcript` event with PROTOCOL.md's fields, serialised with orjson as the gateway does.

It speaks the subset of PROTOCOL.md the load generator uses: `start_transcription` ->
`transcription_started`, binary audio, `stop_transcription` -> (the last finals) ->
`transcription_stopped`, then close 1000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import grpc
import orjson
import uvicorn
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from gateway.backends.riva_config import streaming_config
from gateway.protocol import TranscriptionConfig

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_Request = asr.StreamingRecognizeRequest


def _config(sample_rate: int) -> asr.StreamingRecognizeRequest:
    # The same recognition config the gateway sends, so both load the backend alike.
    return _Request(
        streaming_config=streaming_config(TranscriptionConfig(sample_rate_hz=sample_rate))
    )


class Relay:
    def __init__(self, target: str) -> None:
        self.target = target
        self.stub: asr_grpc.RivaSpeechRecognitionStub | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        channel: grpc.aio.Channel | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                channel = grpc.aio.insecure_channel(self.target)
                self.stub = asr_grpc.RivaSpeechRecognitionStub(channel)
                # As the gateway does: start-up objects out of every later GC pass.
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if channel is not None:
                    await channel.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        session_id = scope["path"].rsplit("/", 1)[-1]
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        start = orjson.loads(message.get("text") or "{}")
        if start.get("type") != "start_transcription":
            await send({"type": "websocket.close", "code": 1008})
            return
        rate = int(start.get("config", {}).get("sample_rate_hz", 16000))
        assert self.stub is not None
        call = self.stub.StreamingRecognize()
        await call.write(_config(rate))
        await send(
            {
                "type": "websocket.send",
                "text": orjson.dumps(
                    {"event": "transcription_started", "session_id": session_id}
                ).decode(),
            }
        )
        responses = asyncio.ensure_future(_forward_results(call, send))
        try:
            while True:
                message = await receive()
                data = message.get("bytes")
                if data:
                    await call.write(_Request(audio_content=data))
                elif message["type"] == "websocket.disconnect":
                    return
                elif (message.get("text") or "").find('"stop_transcription"') >= 0:
                    await call.done_writing()
                    finals, audio_ms = await responses
                    stopped = {
                        "event": "transcription_stopped",
                        "session_id": session_id,
                        "audio_ms": audio_ms,
                        "finals": finals,
                    }
                    await send({"type": "websocket.send", "text": orjson.dumps(stopped).decode()})
                    await send({"type": "websocket.close", "code": 1000})
                    return
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1011})
        finally:
            responses.cancel()
            call.cancel()


async def _forward_results(call: Any, send: Send) -> tuple[int, int]:
    """Each result as a `transcript` event; returns (finals sent, last end_ms)."""
    seq = 0
    end_ms = utterance_start = 0
    async for response in call:
        for result in response.results:
            if not result.alternatives:
                continue
            alt = result.alternatives[0]
            final = result.is_final
            if final and not alt.transcript.strip():
                continue
            end_ms = round(result.audio_processed * 1000)
            event = {
                "event": "transcript",
                "seq": seq + 1,
                "is_final": final,
                "channel": result.channel_tag,
                "start_ms": utterance_start,
                "end_ms": end_ms,
                "stability": round(result.stability, 4),
                "alternatives": [
                    {"transcript": alt.transcript, "confidence": round(alt.confidence, 4)}
                ],
            }
            if final:
                seq += 1
                utterance_start = end_ms
            await send({"type": "websocket.send", "text": orjson.dumps(event).decode()})
    return seq, end_ms


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", required=True, help="the speech server, host:port")
    args = p.parse_args(argv)
    uvicorn.run(
        Relay(args.target),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
