"""Typed dependencies: handlers declare what they need, the lifespan built it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from gateway.config import Settings
from gateway.sessions.service import SessionService


def get_service(conn: HTTPConnection) -> SessionService:
    service: SessionService = conn.app.state.service
    return service


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


ServiceDep = Annotated[SessionService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
