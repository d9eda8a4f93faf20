"""Liveness (the process answers) and readiness (it can serve a new session)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.api.deps import ServiceDep
from gateway.errors import StoreUnavailable

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(service: ServiceDep) -> JSONResponse:
    async def redis_ok() -> bool:
        # A write, not a PING: a read-only replica, maxmemory or a failed save answer
        # PING but refuse the writes every session needs.
        try:
            return await service.store.writable(service.owner)
        except StoreUnavailable:
            return False

    redis, backend = await asyncio.gather(redis_ok(), service.backend.healthy())
    checks = {
        "redis": redis,
        "speech_backend": backend,
        "capacity": not service.registry.at_capacity,
        "accepting": not service.draining,
    }
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks},
        status_code=200 if ok else 503,
    )
