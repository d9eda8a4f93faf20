"""Placing each new stream on the Riva endpoint with the fewest active streams.

gRPC streams are long-lived HTTP/2 calls: behind one ClusterIP they pile onto one pod.
The gateway keeps one channel per endpoint and counts its streams itself, skipping an
endpoint for a while after it failed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

C = TypeVar("C")


@dataclass(slots=True)
class Endpoint(Generic[C]):
    target: str
    client: C
    active: int = 0
    failed_at: float = field(default=float("-inf"))


class Balancer(Generic[C]):
    def __init__(self, endpoints: Sequence[Endpoint[C]], *, failure_cooldown_s: float = 5.0):
        if not endpoints:
            raise ValueError("at least one backend endpoint is needed")
        self.endpoints = list(endpoints)
        self._cooldown = failure_cooldown_s

    def pick(self, exclude: Endpoint[C] | None = None) -> Endpoint[C]:
        """The healthy endpoint with the fewest active streams; if every endpoint failed
        recently, the one that failed longest ago."""
        now = time.monotonic()
        candidates = [e for e in self.endpoints if e is not exclude] or self.endpoints
        healthy = [e for e in candidates if now - e.failed_at >= self._cooldown]
        if healthy:
            return min(healthy, key=lambda e: e.active)
        return min(candidates, key=lambda e: e.failed_at)

    def mark_failed(self, endpoint: Endpoint[C]) -> None:
        endpoint.failed_at = time.monotonic()

    def mark_ok(self, endpoint: Endpoint[C]) -> None:
        endpoint.failed_at = float("-inf")

    def cooling_down(self, endpoint: Endpoint[C]) -> bool:
        """Whether `endpoint` failed recently (new streams go elsewhere if they can)."""
        return time.monotonic() - endpoint.failed_at < self._cooldown
