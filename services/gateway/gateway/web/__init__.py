"""The browser page: `/` and its static files (plain JavaScript, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    # Revalidated on every load, so a deploy's new page is picked up at once.
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    """The page's scripts and styles, to mount at `STATIC_PATH`."""
    return StaticFiles(directory=STATIC_DIR)
