"""A real redis-server on a free port, one per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Proc, free_port, redis_argv, running


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def redis_proc(log_dir: Path) -> Iterator[Proc]:
    port = free_port()
    with running("redis", redis_argv(port, log_dir / "redis-data"), log_dir, port=port) as proc:
        yield proc


@pytest.fixture(scope="session")
def redis_url(redis_proc: Proc) -> str:
    return f"redis://127.0.0.1:{redis_proc.port}/0"
