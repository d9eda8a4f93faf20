"""A session's state as Redis holds it, and its deletion, for the session's own tenant.

With authentication on, the caller's tenant is part of the key (`principal.key(id)`), so
another tenant's session is simply not found (404), whatever id it guesses. With it off
(every caller ANONYMOUS), the session's resume token in `X-Resume-Token` is the proof
of ownership: without it, 404 as well, so that an id alone reveals nothing.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from starlette.requests import HTTPConnection

from gateway.api.authn import PrincipalDep
from gateway.api.deps import ServiceDep
from gateway.auth.principal import Principal
from gateway.errors import StoreUnavailable
from gateway.observability import events
from gateway.protocol import SESSION_ID_RE
from gateway.store.deletion import DELETED, SessionDeletion
from gateway.store.redis_store import SessionRecord, SessionStore, hash_token

router = APIRouter(prefix="/sessions", tags=["sessions"])


def get_session_deletion(conn: HTTPConnection) -> SessionDeletion:
    deletion: SessionDeletion = conn.app.state.session_deletion
    return deletion


ResumeTokenHeader = Annotated[
    str | None,
    Header(
        alias="X-Resume-Token",
        description="the session's resume token: required when authentication is off",
    ),
]


async def _owned_record(
    session_id: str, principal: Principal, resume_token: str | None, store: SessionStore
) -> tuple[str, SessionRecord]:
    """(scoped key, record) of a session the caller may see; 404 for any other."""
    if not SESSION_ID_RE.fullmatch(session_id):
        events.bad_input("bad_session_id")
        raise HTTPException(400, "invalid_message: session_id must be 8 to 64 of [A-Za-z0-9_-]")
    if not principal.may_use(session_id):
        raise HTTPException(403, "unauthorized: this token is for another session")
    anonymous = not principal.tenant
    if anonymous and not resume_token:
        raise HTTPException(404, "session_not_found")
    key = principal.key(session_id)
    try:
        record = await store.get(key)
    except StoreUnavailable as exc:
        raise HTTPException(503, "session store unavailable") from exc
    if record is None or record.state == DELETED:
        raise HTTPException(404, "session_not_found")
    if anonymous and not hmac.compare_digest(hash_token(resume_token or ""), record.token_hash):
        raise HTTPException(404, "session_not_found")
    return key, record


@router.get("/{session_id}")
async def get_session(
    session_id: str,
    service: ServiceDep,
    principal: PrincipalDep,
    resume_token: ResumeTokenHeader = None,
) -> dict[str, object]:
    _, record = await _owned_record(session_id, principal, resume_token, service.store)
    return {
        "session_id": session_id,
        "state": record.state,
        "finals": record.seq,
        "committed_ms": record.committed_ms,
        "audio_ms": record.audio_ms,
        "created_ms": record.created_ms,
        "updated_ms": record.updated_ms,
    }


@router.delete("/{session_id}", status_code=204)
async def delete_session(
    session_id: str,
    service: ServiceDep,
    principal: PrincipalDep,
    deletion: Annotated[SessionDeletion, Depends(get_session_deletion)],
    resume_token: ResumeTokenHeader = None,
) -> Response:
    """End the session wherever it runs (its driver is told at once and stops with
    `session_taken_over`), and remove its record and finals. A live record is replaced
    by a tombstone until it would have expired, so that the id cannot be started again
    meanwhile and no driver can write the session back."""
    key, _ = await _owned_record(session_id, principal, resume_token, service.store)
    try:
        await deletion.delete(key)
    except StoreUnavailable as exc:
        raise HTTPException(503, "session store unavailable") from exc
    return Response(status_code=204)
