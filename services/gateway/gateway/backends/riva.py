"""Riva over `grpc.aio`: one channel per endpoint, one StreamingRecognize call per session.

Never the synchronous helpers of `riva.client` in a thread per session: that is the
concurrency ceiling this gateway exists to remove (DESIGN.md, "Riva").
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from gateway.backends.balancer import Balancer, Endpoint
from gateway.config import RivaSettings
from gateway.observability.tracing import grpc_metadata


def channel_options(settings: RivaSettings) -> list[tuple[str, int]]:
    """Keepalive pings that a gRPC server with the default ping policy accepts (Riva's
    Triton front end, the CPU speech server): such a server takes a ping without data at
    most every 5 minutes and answers more with GOAWAY `too_many_pings`; and none on a
    connection with no call. A backend that hangs while audio flows is found sooner by the
    session's own watch (`LIMITS__BACKEND_RESPONSE_TIMEOUT_S`)."""
    return [
        ("grpc.keepalive_time_ms", int(settings.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ]


class RivaClient:
    """One endpoint's channel and stubs."""

    def __init__(self, target: str, settings: RivaSettings) -> None:
        self.target = target
        if settings.use_tls:
            root = Path(settings.ssl_root_cert).read_bytes() if settings.ssl_root_cert else None
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.aio.secure_channel(target, creds, options=channel_options(settings))
        else:
            self.channel = grpc.aio.insecure_channel(target, options=channel_options(settings))
        self.asr = asr_grpc.RivaSpeechRecognitionStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)


def auth_metadata(settings: RivaSettings) -> tuple[tuple[str, str], ...]:
    """Metadata for NVIDIA's hosted endpoint, as `nvidia-riva-client`'s auth helper sends."""
    metadata: list[tuple[str, str]] = []
    if settings.api_key is not None:
        metadata.append(("authorization", f"Bearer {settings.api_key.get_secret_value()}"))
    if settings.function_id:
        metadata.append(("function-id", settings.function_id))
    return tuple(metadata)


StreamCall = Any  # grpc.aio.StreamStreamCall[StreamingRecognizeRequest, ...]


class RivaBackend:
    def __init__(self, settings: RivaSettings) -> None:
        if not settings.targets:
            raise ValueError("RIVA__TARGETS names no endpoint")
        self._settings = settings
        self._metadata = auth_metadata(settings)
        self.balancer: Balancer[RivaClient] = Balancer(
            [Endpoint(t, RivaClient(t, settings)) for t in settings.targets]
        )

    def open_stream(
        self, exclude: Endpoint[RivaClient] | None = None
    ) -> tuple[Endpoint[RivaClient], StreamCall]:
        """Start a StreamingRecognize call on the least loaded endpoint; the caller writes
        its requests and must call `release(endpoint)` when the call is over."""
        endpoint = self.balancer.pick(exclude)
        call = endpoint.client.asr.StreamingRecognize(
            metadata=grpc_metadata(self._metadata), wait_for_ready=False
        )
        endpoint.active += 1
        return endpoint, call

    @staticmethod
    def release(endpoint: Endpoint[RivaClient]) -> None:
        endpoint.active -= 1

    async def healthy(self, timeout_s: float = 1.0) -> bool:
        """Whether at least one endpoint answers its gRPC health check with SERVING."""

        async def check(endpoint: Endpoint[RivaClient]) -> bool:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.TimeoutError):
                reply = await endpoint.client.health.Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout_s
                )
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
            return False

        results = await asyncio.gather(*(check(e) for e in self.balancer.endpoints))
        return any(results)

    async def close(self) -> None:
        await asyncio.gather(*(e.client.channel.close() for e in self.balancer.endpoints))
