"""Everything under /api/v1."""

from fastapi import APIRouter

from gateway.api.routes import health, published, sessions, tokens, transcribe

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(transcribe.router)
api_router.include_router(health.router)
api_router.include_router(sessions.router)
api_router.include_router(published.router)
api_router.include_router(tokens.router)
