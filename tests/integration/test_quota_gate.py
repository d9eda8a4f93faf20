"""The quota scripts and `QuotaGate` against a real Redis, with two tenants: the cap, lease
expiry, the start rate, the day's audio, audio counted once across a resume on another
pod, and what a session's end does. The end-to-end tests through gateways are in
test_quota_fleet.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis

from gateway.config import QuotaSettings, RedisSettings, TenantQuota
from gateway.errors import SessionError
from gateway.observability import metrics
from gateway.protocol import CloseCode, ErrorCode
from gateway.quotas.gate import QuotaGate
from gateway.store.connection import connect
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

MakeGate = Callable[..., QuotaGate]


@dataclass
class Driver:
    """What the gate reads of a live session (as `LiveSession` has it)."""

    session_id: str
    session_start_ms: int = 0
    audio_ms: int = 0


@pytest.fixture
async def make_gate(redis_url: str) -> AsyncIterator[MakeGate]:
    clients = []
    prefix = f"qt{time.time_ns()}"

    def make(**quotas: object) -> QuotaGate:
        client = connect(RedisSettings(url=redis_url))
        clients.append(client)
        return QuotaGate(client, QuotaSettings(**quotas), prefix)  # type: ignore[arg-type]

    yield make
    for client in clients:
        await client.aclose()


def audio_today(redis_url: str, gate: QuotaGate, tenant: str) -> int:
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        seconds, _ = r.time()
        return int(r.hget(gate.keys(tenant)[2], str(seconds // 86400)) or 0)


async def refused(gate: QuotaGate, tenant: str, key: str, *, new: bool = True) -> SessionError:
    with pytest.raises(SessionError) as info:
        await gate.admit(tenant, key, new=new)
    return info.value


async def test_the_cap_counts_per_tenant_and_a_resume_counts_once(make_gate: MakeGate) -> None:
    gate = make_gate(max_sessions=2, tenants={"big": TenantQuota(max_sessions=3)})
    assert await gate.admit("acme", "acme/s1", new=True)
    assert await gate.admit("acme", "acme/s2", new=True)
    rejected = metrics.SESSIONS_REJECTED.labels("quota")
    before = rejected._value.get()
    error = await refused(gate, "acme", "acme/s3")
    assert rejected._value.get() == before + 1
    assert error.code is ErrorCode.QUOTA_EXCEEDED
    assert error.retryable
    assert error.close_code is CloseCode.TRY_AGAIN_LATER
    assert error.retry_after_s is not None
    assert error.retry_after_s > 0
    # A resume of a session that counts is admitted at the cap, and not counted again.
    assert not await gate.admit("acme", "acme/s1", new=False)
    assert (await refused(gate, "acme", "acme/s3", new=False)).code is ErrorCode.QUOTA_EXCEEDED
    # Other tenants are not touched by acme's count, with their own caps.
    assert await gate.admit("other", "other/s1", new=True)
    assert await gate.admit("other", "other/s2", new=True)
    for i in range(3):
        assert await gate.admit("big", f"big/s{i}", new=True)
    assert (await refused(gate, "big", "big/s4")).code is ErrorCode.QUOTA_EXCEEDED


async def test_leases_run_out_unless_renewed(make_gate: MakeGate) -> None:
    gate = make_gate(max_sessions=2, renew_interval_s=1, lease_s=2)
    renewed, abandoned = Driver("t/renewed"), Driver("t/abandoned")
    assert await gate.admit("t", renewed.session_id, new=True)
    assert await gate.admit("t", abandoned.session_id, new=True)
    await refused(gate, "t", "t/third")

    async def third_admitted() -> bool:
        await gate.renew([renewed])
        try:
            return await gate.admit("t", "t/third", new=True)
        except SessionError:
            return False

    deadline = time.monotonic() + 10
    while not await third_admitted():
        assert time.monotonic() < deadline, "the abandoned session's lease never ran out"
    # The renewed one still counts: the cap is full again.
    assert (await refused(gate, "t", "t/fourth")).code is ErrorCode.QUOTA_EXCEEDED


async def test_the_start_rate_bites_new_sessions_only(make_gate: MakeGate) -> None:
    gate = make_gate(starts_per_s=0.5, start_burst=2, max_sessions=0)
    assert await gate.admit("r", "r/1", new=True)
    assert await gate.admit("r", "r/2", new=True)
    rejected = metrics.SESSIONS_REJECTED.labels("rate")
    before = rejected._value.get()
    error = await refused(gate, "r", "r/3")
    assert rejected._value.get() == before + 1
    assert error.code is ErrorCode.RATE_LIMITED
    assert error.retryable
    assert error.close_code is CloseCode.TRY_AGAIN_LATER
    assert error.retry_after_s is not None
    assert 0 < error.retry_after_s <= 2.0
    # A resume is not a start: not rate limited.
    assert await gate.admit("r", "r/elsewhere", new=False)
    # Another tenant has its own bucket.
    assert await gate.admit("r2", "r2/1", new=True)


async def test_the_days_audio_quota_bites_and_audio_counts_once_across_a_resume(
    make_gate: MakeGate, redis_url: str
) -> None:
    gate = make_gate(audio_hours_per_day=0.002, max_sessions=0, starts_per_s=0)  # 7.2 s
    pod_a = Driver("a/s1")
    assert await gate.admit("a", pod_a.session_id, new=True)
    pod_a.audio_ms = 5000
    await gate.renew([pod_a])
    assert audio_today(redis_url, gate, "a") == 5000
    # Pod A dies; the client resumes on pod B from the committed offset 3000 and re-sends
    # 3000..5000, then goes on to 7000: only 5000..7000 is new.
    assert not await gate.admit("a", pod_a.session_id, new=False)
    pod_b = Driver("a/s1", session_start_ms=3000, audio_ms=7000)
    await gate.renew([pod_b])
    assert audio_today(redis_url, gate, "a") == 7000
    assert await gate.admit("a", "a/s2", new=True)  # 7000 < 7200
    # The session stops at 7500: its last audio is counted as it is released.
    pod_b.audio_ms = 7500
    await gate.ended(pod_b.session_id, pod_b, added=False, keep=False)
    assert audio_today(redis_url, gate, "a") == 7500
    error = await refused(gate, "a", "a/s3")
    assert error.code is ErrorCode.QUOTA_EXCEEDED
    assert not error.retryable
    assert error.close_code is CloseCode.POLICY
    assert error.retry_after_s is not None
    assert 0 < error.retry_after_s <= 86400
    # A session that still counts may resume; the quota stops new ones only.
    assert not await gate.admit("a", "a/s2", new=False)
    # Another tenant's day is its own.
    assert await gate.admit("b", "b/s1", new=True)


async def test_an_end_releases_or_keeps_the_session(make_gate: MakeGate) -> None:
    gate = make_gate(max_sessions=1)
    stopped = Driver("e/stopped")
    assert await gate.admit("e", stopped.session_id, new=True)
    await gate.ended(stopped.session_id, stopped, added=True, keep=False)
    detached = Driver("e/detached")
    assert await gate.admit("e", detached.session_id, new=True)
    await gate.ended(detached.session_id, detached, added=True, keep=True)
    # Detached: it may be resumed, so it still counts.
    await refused(gate, "e", "e/other")
    # A connection that failed before its session started, for a session that counted
    # already (added False), leaves the count alone ...
    await gate.ended(detached.session_id, None, added=False, keep=False)
    await refused(gate, "e", "e/other")
    # ... one whose admission added it undoes that.
    await gate.ended(detached.session_id, None, added=True, keep=False)
    assert await gate.admit("e", "e/other", new=True)


async def test_unlimited_tenants_cost_no_redis_call(make_gate: MakeGate, redis_url: str) -> None:
    free = TenantQuota(max_sessions=0, starts_per_s=0, audio_hours_per_day=0)
    gate = make_gate(tenants={"free": free})
    for i in range(5):
        assert not await gate.admit("free", f"free/{i}", new=True)
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        assert not r.exists(*gate.keys("free"))


async def test_a_quota_check_without_redis_refuses_as_a_store_fault() -> None:
    # Nothing listens on this port: as a Redis that is down.
    url = f"redis://127.0.0.1:{free_port()}/0"
    client = connect(RedisSettings(url=url, connect_timeout_s=0.5, socket_timeout_s=0.5))
    gate = QuotaGate(client, QuotaSettings(max_sessions=5), "down")
    try:
        error = await refused(gate, "t", "t/s1")
        assert error.code is ErrorCode.INTERNAL_ERROR
        assert error.retryable
        assert error.close_code is CloseCode.TRY_AGAIN_LATER
        # The renewal and the end only log: a live session is not touched.
        await gate.renew([Driver("t/live", audio_ms=1000)])
        await gate.ended("t/live", Driver("t/live"), added=True, keep=False)
    finally:
        await client.aclose()
