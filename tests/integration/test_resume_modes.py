"""The resume tests of test_resume.py, run again (imported, not copied) with the
gateways on replicated Redis: Sentinel, then Cluster (one setup of each for the module).

The gateways read REDIS__MODE and the sentinels' or nodes' addresses from the
environment (set here for the module; `REDIS__URL`, which the tests pass, is then not
used); `redis_url` is the primary's (Sentinel) or a node's (Cluster), for the tests
that read Redis directly (`direct_client` follows a Cluster's redirections).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_resume import (
    sphinx_fleet,
    test_gateway_killed_mid_stream_resumes_on_the_other,
    test_resume_refusals,
    test_resume_replays_missed_finals_and_continues,
    test_two_resumes_at_once_leave_exactly_one_driver,
)
from tests.support.redis_ha import ClusterSetup, SentinelSetup, cluster_setup, sentinel_setup

pytestmark = pytest.mark.integration

__all__ = [
    "sphinx_fleet",
    "test_gateway_killed_mid_stream_resumes_on_the_other",
    "test_resume_refusals",
    "test_resume_replays_missed_finals_and_continues",
    "test_two_resumes_at_once_leave_exactly_one_driver",
]


@pytest.fixture(scope="module", params=["sentinel", "cluster"])
def replicated(
    request: pytest.FixtureRequest, log_dir: Path
) -> Iterator[SentinelSetup | ClusterSetup]:
    setup = sentinel_setup if request.param == "sentinel" else cluster_setup
    with setup(log_dir) as running, pytest.MonkeyPatch.context() as env:
        for name, value in running.gateway_env().items():
            env.setenv(name, value)
        yield running


@pytest.fixture(scope="module", autouse=True)
def _gateways_on_replicated_redis(replicated: SentinelSetup | ClusterSetup) -> None:
    """Autouse, so that it comes before the module's other fixtures (sphinx_fleet)."""


@pytest.fixture(scope="module")
def redis_url(replicated: SentinelSetup | ClusterSetup) -> str:
    if isinstance(replicated, ClusterSetup):
        return f"redis://127.0.0.1:{next(iter(replicated.nodes))}/0"
    return f"redis://127.0.0.1:{replicated.primary_port()}/0"
