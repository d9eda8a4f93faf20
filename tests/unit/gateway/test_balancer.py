"""Each new stream goes to the endpoint with the fewest streams, skipping failed ones."""

from __future__ import annotations

import pytest

from gateway.backends.balancer import Balancer, Endpoint


def test_fewest_active_wins() -> None:
    a, b = Endpoint("a", None, active=3), Endpoint("b", None, active=1)
    assert Balancer([a, b]).pick() is b


def test_recently_failed_endpoint_is_skipped_until_cooldown() -> None:
    a, b = Endpoint("a", None, active=0), Endpoint("b", None, active=5)
    balancer = Balancer([a, b], failure_cooldown_s=60)
    balancer.mark_failed(a)
    assert balancer.pick() is b
    balancer.mark_ok(a)
    assert balancer.pick() is a


def test_all_failed_picks_the_oldest_failure() -> None:
    a, b = Endpoint("a", None), Endpoint("b", None)
    balancer = Balancer([a, b], failure_cooldown_s=60)
    balancer.mark_failed(b)
    balancer.mark_failed(a)
    assert balancer.pick() is b


def test_exclude_avoids_an_endpoint_when_another_exists() -> None:
    a, b = Endpoint("a", None), Endpoint("b", None, active=9)
    balancer = Balancer([a, b])
    assert balancer.pick(exclude=a) is b
    assert Balancer([a]).pick(exclude=a) is a


def test_no_endpoints_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Balancer([])
