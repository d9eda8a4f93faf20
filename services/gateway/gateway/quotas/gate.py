"""`QuotaGate`: what the session service asks of the quotas, at three points and never per
audio frame: admission (one script call), the pod's renewal tick (one pipeline for all
its sessions, one script call per tenant), and a session's end (one script call).

A tenant without limits (`TenantLimits.unlimited`) costs no Redis call at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from redis.exceptions import ResponseError

from gateway.config import QuotaSettings, RedisSettings, Settings
from gateway.errors import StoreUnavailable
from gateway.observability import events
from gateway.quotas import scripts
from gateway.quotas.limits import TenantLimits, limits_for, tenant_of
from gateway.quotas.refusals import refusal, rejection_reason
from gateway.sessions.failures import store_unavailable
from gateway.store.connection import RedisClient
from gateway.store.faults import GuardedCalls
from gateway.store.pipeline import pipelined
from gateway.store.redis_store import SessionStore

T = TypeVar("T")

log = logging.getLogger(__name__)


class Metered(Protocol):
    """What the gate reads of a live session (`sessions.live.LiveSession`), once a tick."""

    @property
    def session_id(self) -> str: ...  # the scoped key: "<tenant>/<id>", or "<id>"

    @property
    def session_start_ms(self) -> int: ...  # the offset this connection began at

    @property
    def audio_ms(self) -> int: ...  # the session's audio received so far (offset)


class QuotaGate:
    """Fleet-wide quotas per tenant in Redis (see `quotas/scripts.py` for the keys)."""

    def __init__(
        self,
        client: RedisClient | None,
        settings: QuotaSettings,
        prefix: str,
        calls: GuardedCalls | None = None,
        *,
        owns_client: bool = True,
    ) -> None:
        """`calls`: how calls on `client` are made (the store's, when it is the store's
        client; else one with RedisSettings' defaults). `owns_client`: `close` closes it."""
        if settings.lease_s < 2 * settings.renew_interval_s:
            raise ValueError("QUOTAS__LEASE_S must be at least two QUOTAS__RENEW_INTERVAL_S")
        self._redis = client
        self._owns_client = owns_client
        defaults = RedisSettings()
        self._call = calls or GuardedCalls(
            client, limit=defaults.max_connections, timeout_s=defaults.socket_timeout_s
        )
        self._settings = settings
        self._prefix = prefix
        self._lease_ms = int(settings.lease_s * 1000)
        self._limits: dict[str, TenantLimits] = {}
        # Set while a renewal is in flight: a release waits for it, or the renewal (its
        # sessions taken before the release) could count the released session again.
        self._renewal: asyncio.Event | None = None
        self._admit = client.register_script(scripts.ADMIT) if client is not None else None
        self._count = client.register_script(scripts.COUNT) if client is not None else None

    @classmethod
    def for_store(cls, store: SessionStore, settings: Settings) -> QuotaGate:
        """A gate on the session store's client and guarded calls (one pool a process)."""
        return cls(
            store.client, settings.quotas, settings.redis.key_prefix, store.call, owns_client=False
        )

    async def close(self) -> None:
        if self._redis is not None and self._owns_client:
            await self._redis.aclose()

    @classmethod
    def off(cls) -> QuotaGate:
        """A gate with no limits and no Redis (for a service built without quotas)."""
        unlimited = QuotaSettings(max_sessions=0, starts_per_s=0, audio_hours_per_day=0)
        return cls(None, unlimited, "")

    def limits(self, tenant: str) -> TenantLimits:
        limits = self._limits.get(tenant)
        if limits is None:
            limits = self._limits[tenant] = limits_for(self._settings, tenant)
        return limits

    def keys(self, tenant: str) -> list[str]:
        tag = f"{self._prefix}:{{q:{tenant}}}"
        return [f"{tag}:active", f"{tag}:counted", f"{tag}:audio", f"{tag}:starts"]

    def due(self, tick: int) -> bool:
        """Whether the housekeeping tick number `tick` (1 s each) renews the quotas."""
        return tick % self._settings.renew_interval_s == 0

    async def admit(self, tenant: str, key: str, *, new: bool) -> bool:
        """Count session `key` of `tenant` (a start if `new`, else a resume), or raise the
        refusal (a `SessionError`, counted in `events.rejected`). When Redis cannot
        answer, the session is refused as for any store fault (`store_unavailable`,
        retryable): it could not be recorded either, so failing open would gain nothing.
        Returns whether this call added the session (False: it counted already, or the
        tenant is unlimited): what `ended` needs if the session does not start after all."""
        limits = self.limits(tenant)
        if limits.unlimited or self._admit is None:
            return False
        try:
            reply = await self._call(
                "quota_admit",
                self._admit,
                keys=self.keys(tenant),
                args=[
                    key,
                    self._lease_ms,
                    limits.max_sessions,
                    limits.audio_ms_per_day,
                    limits.starts_per_s,
                    limits.start_burst,
                    1 if new else 0,
                ],
            )
        except StoreUnavailable as exc:
            raise store_unavailable(key, exc) from None
        verdict = str(reply[0])
        if verdict == "ok":
            return True
        if verdict == "member":
            return False
        error = refusal(
            verdict, int(reply[1]) if len(reply) > 1 else 0, max_sessions=limits.max_sessions
        )
        events.rejected(rejection_reason(error))
        raise error

    async def renew(self, sessions: Iterable[Metered]) -> None:
        """Refresh the leases of this pod's `sessions` and add their audio since the last
        renewal to their tenants' day totals: one pipeline, one script call per tenant.
        A failure is logged: the leases then run out unless the next renewal succeeds."""
        batches = _by_tenant(sessions, self.limits)
        if not batches or self._count is None:
            return
        count = self._count
        # No await between taking the sessions and this: a session that ends from now on
        # is either out of `batches` or waits for this renewal to land before its release.
        renewal = self._renewal = asyncio.Event()

        async def queue(pipe: Any) -> None:
            for tenant, batch in batches.items():
                args: list[Any] = [self._lease_ms, 0]
                for session in batch:
                    args += [session.session_id, session.session_start_ms, session.audio_ms]
                keys = self.keys(tenant)
                # EVALSHA by name: a Cluster pipeline routes the raw command by its keys.
                pipe.execute_command("EVALSHA", count.sha, len(keys), *keys, *args)

        try:
            await self._call("quota_renew", self._pipelined, queue)
        except (StoreUnavailable, ResponseError) as exc:
            log.warning("quota renewal failed: %s", exc)
        finally:
            renewal.set()
            if self._renewal is renewal:
                self._renewal = None

    async def ended(self, key: str, session: Metered | None, *, added: bool, keep: bool) -> None:
        """A connection of session `key` ended. `session`: its driver, if it got one (its
        last audio is counted); `added`: what `admit` returned; `keep`: the session may
        be resumed (detached), so it counts on until its lease runs out. Never raises."""
        tenant = tenant_of(key)
        if self.limits(tenant).unlimited or self._count is None:
            return
        if session is None:
            if not added:
                return  # it counted before this connection: its driver's, not ours
            row = [key, 0, 0]
        else:
            row = [session.session_id, session.session_start_ms, session.audio_ms]
        if self._renewal is not None:
            await self._renewal.wait()
        try:
            await self._call(
                "quota_end",
                self._count,
                keys=self.keys(tenant),
                args=[self._lease_ms, 0 if keep and session is not None else 1, *row],
            )
        except Exception as exc:
            # At a connection's end, whatever happened: the lease runs out by itself.
            log.warning("quota release of a session failed: %r", exc)

    async def _pipelined(self, queue: Callable[[Any], Awaitable[None]]) -> list[Any]:
        assert self._redis is not None
        scripts = [script for script in (self._admit, self._count) if script is not None]
        return await pipelined(self._redis, queue, scripts)


def _by_tenant(
    sessions: Iterable[Metered], limits: Callable[[str], TenantLimits]
) -> dict[str, list[Metered]]:
    """This pod's sessions grouped by tenant, leaving out tenants without limits."""
    batches: dict[str, list[Metered]] = {}
    for session in sessions:
        tenant = tenant_of(session.session_id)
        if not limits(tenant).unlimited:
            batches.setdefault(tenant, []).append(session)
    return batches
