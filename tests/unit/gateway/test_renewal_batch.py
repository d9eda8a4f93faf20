"""Lease renewals spread over the ticks: each session once per period, a share each tick."""

from __future__ import annotations

from typing import Any, cast

from gateway.config import LimitSettings
from gateway.sessions.live import LiveSession
from gateway.sessions.registry import SessionRegistry


def test_each_session_is_due_once_per_period_and_the_ticks_share_them() -> None:
    registry = SessionRegistry(LimitSettings())
    for i in range(500):
        registry.sessions[f"session-{i:05d}"] = cast(LiveSession, cast(Any, f"s{i}"))
    every = 10
    batches = [registry.renewal_batch(tick, every) for tick in range(1, every + 1)]
    renewed = [s for batch in batches for s in batch]
    assert sorted(renewed) == sorted(registry.sessions.values())  # each once a period
    assert max(len(b) for b in batches) < 500 / every * 2  # no tick takes them all
    # The next period renews the same sessions at the same ticks.
    assert registry.renewal_batch(every + 3, every) == batches[2]
