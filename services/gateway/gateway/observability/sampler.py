"""The pod's own state, sampled once a second into gauges: drain, capacity, and the
speech backend as the balancer sees it and as its gRPC health check answers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2

from gateway.backends.balancer import Endpoint
from gateway.backends.riva import RivaClient
from gateway.observability import metrics
from gateway.protocol import ErrorCode

if TYPE_CHECKING:
    from gateway.sessions.service import SessionService


class PodSampler:
    def __init__(self, service: SessionService, *, capacity: int, probe_every: int = 5) -> None:
        self._service = service
        self._capacity = capacity
        self._probe_every = probe_every

    async def run(self, tick_s: float = 1.0) -> None:
        """Sample every `tick_s`, health-check the endpoints every `probe_every` ticks."""
        metrics.init_labels(code.value for code in ErrorCode)
        metrics.WORKER_STARTS.inc()
        ticks = 0
        while True:
            self.sample()
            if ticks % self._probe_every == 0:
                await self.probe()
            ticks += 1
            await asyncio.sleep(tick_s)

    def sample(self) -> None:
        service = self._service
        metrics.DRAINING.set(1 if service.draining else 0)
        metrics.SESSIONS_CAPACITY.set(self._capacity)
        metrics.SESSIONS_ACTIVE.set(len(service.registry.sessions))
        balancer = service.backend.balancer
        for endpoint in balancer.endpoints:
            metrics.BACKEND_STREAMS.labels(endpoint.target).set(endpoint.active)
            healthy = not balancer.cooling_down(endpoint)
            metrics.BACKEND_ENDPOINT_HEALTHY.labels(endpoint.target).set(1 if healthy else 0)

    async def probe(self, timeout_s: float = 1.0) -> None:
        endpoints = self._service.backend.balancer.endpoints
        results = await asyncio.gather(*(_serving(e, timeout_s) for e in endpoints))
        for endpoint, up in zip(endpoints, results, strict=True):
            metrics.BACKEND_ENDPOINT_UP.labels(endpoint.target).set(1 if up else 0)


async def _serving(endpoint: Endpoint[RivaClient], timeout_s: float) -> bool:
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.TimeoutError):
        reply = await endpoint.client.health.Check(
            health_pb2.HealthCheckRequest(), timeout=timeout_s
        )
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    return False
