"""The app factory: `create_app(settings)`; clients are opened once, in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from gateway import web
from gateway.admin.follower import start_following
from gateway.api.errors import install_error_handlers
from gateway.api.router import api_router
from gateway.api.routes import audio_transcriptions, published, realtime
from gateway.auth.authenticator import Authenticator
from gateway.auth.refusal import AuthConfigError
from gateway.backends.riva import RivaBackend
from gateway.config import Settings
from gateway.files.body_limit import UploadLimit
from gateway.observability.logs import redact_server_loggers
from gateway.observability.sampler import PodSampler
from gateway.observability.tracing import configure_from_env
from gateway.quotas.gate import QuotaGate
from gateway.sessions.registry import SessionRegistry
from gateway.sessions.service import SessionService
from gateway.store.deletion import SessionDeletion
from gateway.store.redis_store import SessionStore

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_from_env("speech-gateway", settings.server.pod_name)
        store = SessionStore.from_settings(settings.redis)
        backend = RivaBackend(settings.riva)
        # Riva endpoints from the Service's EndpointSlices, when configured (imported only
        # then: the kubernetes client is large, and most processes never need it).
        discovery = None
        if settings.riva.discovery.service:
            from gateway.backends.discovery import start_discovery

            discovery = start_discovery(settings.riva, backend)
        registry = SessionRegistry(settings.limits)
        quotas = QuotaGate.for_store(store, settings)
        service = SessionService(settings, store, backend, registry, quotas=quotas)
        app.state.service = service
        deletion = SessionDeletion(store, default_ttl_s=settings.limits.session_ttl_s)
        app.state.session_deletion = deletion
        background = [
            asyncio.create_task(service.run_housekeeping(), name="housekeeping"),
            asyncio.create_task(service.sample_cpu(), name="cpu-samples"),
            asyncio.create_task(service.watch_takeovers(), name="takeovers"),
            asyncio.create_task(
                PodSampler(service, capacity=settings.limits.max_concurrent_sessions).run(),
                name="pod-metrics",
            ),
        ]
        # The pod's drain flag (POST /admin/drain on the master's admin listener): a
        # worker started while the pod is drained is drained before its first session.
        follower = start_following(service, lambda: bool(getattr(app.state, "stopping", False)))
        if follower is not None:
            background.append(asyncio.create_task(follower.run(), name="drain-follower"))
        # Start-up objects live forever: keep them out of every later GC pass (full
        # collections set the latency tail near saturation, DESIGN.md).
        gc.collect()
        gc.freeze()
        log.info("gateway ready: riva=%s", ",".join(settings.riva.targets))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if discovery is not None:
                await discovery.close()
            await backend.close()
            await store.close()
            await quotas.close()

    # The interactive docs and the schema route only where asked (never by default in
    # production); `app.openapi()` builds the schema in-process either way.
    docs = settings.server.docs_enabled
    app = FastAPI(
        title="Speech gateway",
        version="1.0.0",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.settings = settings
    app.state.authenticator = _authenticator(settings)
    redact_server_loggers()
    app.include_router(api_router)
    app.include_router(published.root_router)
    app.include_router(web.router)
    app.include_router(audio_transcriptions.router)
    app.include_router(realtime.router)
    app.add_middleware(
        UploadLimit, path_prefix=audio_transcriptions.router.prefix,
        max_bytes=settings.files.max_bytes,
    )  # fmt: skip
    app.mount(web.STATIC_PATH, web.static_files(), name="static")
    install_error_handlers(app)
    return app


def _authenticator(settings: Settings) -> Authenticator:
    # Checked when the app is built: a gateway that would let everyone in, or no one,
    # does not start (gunicorn's worker fails to boot with this line).
    try:
        return Authenticator.from_settings(settings.auth)
    except AuthConfigError as exc:
        log.critical("gateway not started: %s", exc)
        raise


def create_app_from_env() -> FastAPI:
    """For gunicorn and uvicorn: settings from the environment."""
    return create_app(Settings())
