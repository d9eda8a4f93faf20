"""The takeover subscription against a real Redis: a resume's notice arrives, and a
subscription that breaks says so (the gateway then subscribes again and renews its
leases) instead of going on with a gap, even when redis-py reconnects by itself."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from gateway.config import RedisSettings
from gateway.store.redis_store import SessionStore
from gateway.store.takeovers import SubscriptionLost

pytestmark = pytest.mark.integration


async def test_notice_arrives_and_a_broken_subscription_raises(redis_url: str) -> None:
    store = SessionStore.from_settings(RedisSettings(url=redis_url, key_prefix="tk"))
    subscription = store.takeovers()
    try:
        await subscription.subscribe()
        notices = subscription.notices()
        session_id = f"takeover-sub-{time.time_ns()}"
        epoch = await store.create(
            session_id,
            config_json='{"encoding":"pcm16"}',
            token="t",
            owner="pod-a",
            ttl_s=60,
            retry_window_s=0,
        )
        resumed = await store.resume(
            session_id, token="t", owner="pod-b", last_seq=0, resume_window_s=60, ttl_s=60
        )
        assert resumed.epoch == epoch + 1
        async with asyncio.timeout(5):
            assert await anext(notices) == (session_id, epoch + 1)

        with redis.Redis.from_url(redis_url) as admin:
            assert admin.client_kill_filter(_type="pubsub") >= 1
        with pytest.raises((SubscriptionLost, redis.exceptions.ConnectionError, OSError)):
            async with asyncio.timeout(10):
                await anext(notices)
    finally:
        await subscription.close()
        await store.close()
