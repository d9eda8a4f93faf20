"""A stand-in for a hung Riva: a real gRPC server that serves Riva's StreamingRecognize and
health, takes every request, and never answers (a backend wedged while audio flows).

Run as `python -m tests.support.hung_riva PORT`; it reports SERVING like a healthy one.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc


class HungAsr(asr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]
    async def StreamingRecognize(
        self, requests: AsyncIterator[asr.StreamingRecognizeRequest], context: Any
    ) -> AsyncIterator[asr.StreamingRecognizeResponse]:
        async for _ in requests:
            pass
        await asyncio.Event().wait()  # the stream stays open, and silent, until cancelled
        yield asr.StreamingRecognizeResponse()


async def main(port: int) -> None:
    server = grpc.aio.server()
    asr_grpc.add_RivaSpeechRecognitionServicer_to_server(HungAsr(), server)
    checker = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
