"""The protocol's machine-readable documents: its JSON Schema and AsyncAPI description."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.published.asyncapi import asyncapi_document
from gateway.published.schema import protocol_schema

router = APIRouter(prefix="/protocol", tags=["protocol"])
# Served next to FastAPI's /openapi.json, where tools look for it.
root_router = APIRouter(tags=["protocol"])


@router.get("/schema.json")
async def schema() -> dict[str, Any]:
    """The JSON Schema of every text frame of the WebSocket protocol."""
    return protocol_schema()


@router.get("/asyncapi.json")
@root_router.get("/asyncapi.json")
async def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket protocol."""
    return asyncapi_document()
