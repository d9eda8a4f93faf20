"""The gunicorn worker: uvicorn with the fast loop, parser and WebSocket implementation,
and a drain before shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType
from typing import Any, ClassVar

from fastapi import FastAPI
from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from gateway.api.ws_protocol import GatewayWebSocketProtocol
from gateway.observability.logs import redact_handlers

log = logging.getLogger(__name__)


class DrainingServer(Server):
    """On SIGTERM (a rolling deploy, the local fleet's stop) drain first: uvicorn alone
    closes every WebSocket with 1012 at once, and clients would lose their in-flight
    audio. A second signal exits at once."""

    def __init__(self, config: Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def startup(self, sockets: list[Any] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        service = getattr(self._app.state, "service", None)
        if sig == signal.SIGTERM and not self._draining and service and self._loop:
            self._draining = True
            # An admin undrain must not make an exiting worker accept sessions again.
            self._app.state.stopping = True
            self._loop.call_soon_threadsafe(self._start_drain, sig, frame)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self, sig: int, frame: FrameType | None) -> None:
        # Held on the server until the process exits: the drain's owner.
        self._drain_task = asyncio.ensure_future(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            timeout = self._app.state.settings.limits.drain_timeout_s
            result = await self._app.state.service.drain(timeout)
            log.info("drained: %s", result)
        except Exception:
            log.exception("drain failed")
        finally:
            super().handle_exit(sig, frame)


_REDACTED_LOGGERS = ("uvicorn.error", "uvicorn.access", "gunicorn.error", "gateway")


class GatewayWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        # The sans-I/O implementation costs 10-15 % less CPU per stream (DESIGN.md); this
        # is its subclass hardened against client input (api/ws_protocol.py).
        "ws": GatewayWebSocketProtocol,
        # Audio does not compress; deflate would cost CPU and memory per socket.
        "ws_per_message_deflate": False,
        # Frames up to this size reach the gateway, which answers frames over its own
        # limit with `frame_too_large`; larger ones uvicorn closes with 1009.
        "ws_max_size": 4 * 1024 * 1024,
        "lifespan": "on",
        "proxy_headers": True,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn logs each WebSocket's path with its query string (`?access_token=`).
        redact_handlers(*(logging.getLogger(name) for name in _REDACTED_LOGGERS))

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config, app=self.wsgi)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
