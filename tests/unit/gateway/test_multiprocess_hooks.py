"""gunicorn's hooks for multiprocess metrics: a fresh directory per master, wiped at
start, and a dead worker's live gauges dropped."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.observability import multiprocess


def test_the_directory_is_wiped_when_the_master_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    (tmp_path / "stale").mkdir()
    monkeypatch.setenv(multiprocess.ENV, str(tmp_path))
    multiprocess.on_starting(server=None)
    assert list(tmp_path.iterdir()) == []


def test_a_dead_workers_live_gauges_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(multiprocess.ENV, str(tmp_path))
    for name in (
        "gauge_livesum_41.db",
        "gauge_livemax_41.db",
        "counter_41.db",
        "gauge_livesum_42.db",
    ):
        (tmp_path / name).write_bytes(b"")
    multiprocess.child_exit(server=None, worker=SimpleNamespace(pid=41))
    # Counters of the dead worker still count (they only ever grew); its live gauges not.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_41.db", "gauge_livesum_42.db"]


def test_without_a_directory_each_master_gets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # Recorded first, so that the variable the hook sets is removed after the test.
    monkeypatch.setenv(multiprocess.ENV, "")
    monkeypatch.delenv(multiprocess.ENV)
    first = multiprocess.use_multiprocess_dir()
    monkeypatch.delenv(multiprocess.ENV)
    second = multiprocess.use_multiprocess_dir()
    assert first != second
    assert Path(first).is_dir()
    multiprocess.on_exit(server=None)
    assert not Path(first).exists()
    assert not Path(second).exists()


def test_the_environment_is_left_as_it_was() -> None:
    # Runs after the test above: a leaked directory would reach every server tests start.
    assert multiprocess.ENV not in os.environ
