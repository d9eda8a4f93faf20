"""A load-generator session straight to the speech server: one Riva StreamingRecognize
call (the `direct` target: latency without the gateway), paced by its own writer task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench.session import Session


class GrpcSession(Session):
    """One Riva StreamingRecognize call: latency without the gateway."""

    async def run(self, stub: Any, config: Any, requests: Sequence[Any]) -> None:
        import grpc

        count = len(requests)
        step = self.gen.frame_s
        call = stub.StreamingRecognize()
        reader = asyncio.create_task(self._read(call))
        try:
            await call.write(config)
            self.gen.session_streaming(self)
            next_due = time.monotonic()
            sent_at = self.sent_at
            while self.streaming:
                delay = next_due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                    if not self.streaming:
                        break
                now = time.monotonic()
                await call.write(requests[(self.offset + len(sent_at)) % count])
                sent_at.append(now)
                next_due += step
            await call.done_writing()
        except grpc.aio.AioRpcError as exc:
            self.error(f"grpc {exc.code().name}")
        except asyncio.InvalidStateError:
            pass  # the call ended; the reader says how
        await reader

    async def _read(self, call: Any) -> None:
        import grpc

        try:
            async for response in call:
                for result in response.results:
                    if result.is_final and result.alternatives[0].transcript.strip():
                        self.final(None, round(result.audio_processed * 1000))
            self.stopped = True
        except grpc.aio.AioRpcError as exc:
            self.error(f"grpc {exc.code().name}")
        self.gen.session_settled(self)
