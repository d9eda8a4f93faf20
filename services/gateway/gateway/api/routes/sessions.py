"""A session's state as Redis holds it, for operators and tests."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from gateway.api.deps import ServiceDep
from gateway.auth.principal import ANONYMOUS
from gateway.errors import StoreUnavailable
from gateway.observability import events
from gateway.protocol import SESSION_ID_RE

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.get("/{session_id}")
async def get_session(session_id: str, service: ServiceDep) -> dict[str, object]:
    if not SESSION_ID_RE.fullmatch(session_id):
        events.bad_input("bad_session_id")
        raise HTTPException(400, "invalid_message: session_id must be 8 to 64 of [A-Za-z0-9_-]")
    try:
        record = await service.store.get(ANONYMOUS.key(session_id))
    except StoreUnavailable as exc:
        raise HTTPException(503, "session store unavailable") from exc
    if record is None:
        raise HTTPException(404, "session_not_found")
    return {
        "session_id": session_id,
        "state": record.state,
        "finals": record.seq,
        "committed_ms": record.committed_ms,
        "audio_ms": record.audio_ms,
        "created_ms": record.created_ms,
        "updated_ms": record.updated_ms,
    }
