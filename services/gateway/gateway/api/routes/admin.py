"""Operations on this pod, not for clients (NGINX does not route /admin)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from gateway.api.deps import ServiceDep, SettingsDep

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/drain")
async def drain(
    service: ServiceDep,
    settings: SettingsDep,
    timeout_s: float | None = Query(default=None, ge=0, le=3600),
) -> dict[str, int]:
    """For a Kubernetes preStop hook: readiness fails, new sessions are refused, every
    client is asked to reconnect; returns when they moved or the timeout passed."""
    limit = settings.limits.drain_timeout_s if timeout_s is None else timeout_s
    return await service.drain(limit)
