"""The master's side of the admin surface without a gunicorn: the drain flag and the
workers' files (admin/pod_state.py), and what the master makes of them (admin/control.py).
The worker files here are written by the test in the workers' place."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.admin import pod_state
from gateway.admin.control import Busy, PodControl
from gateway.admin.pod_state import FlagWatch, WorkerState
from tests.support.processes import poll_until


def _worker_follows(path: Path, pid: int, sessions: int, stop: threading.Event) -> None:
    """A stand-in for one worker's tick: report the drain of each new flag as done."""
    while not stop.is_set():
        flag = pod_state.read_flag(path)
        if flag is None:
            state = WorkerState(pid=pid, sessions=0, draining=False)
        else:
            state = WorkerState(
                pid=pid,
                sessions=0,
                draining=True,
                drain_id=flag.drain_id,
                drained_sessions=sessions,
                remaining=0,
            )
        pod_state.write_worker(path, state)
        time.sleep(0.01)


def test_a_drain_adds_up_every_workers_result(tmp_path: Path) -> None:
    stop = threading.Event()
    workers = [
        threading.Thread(target=_worker_follows, args=(tmp_path, pid, n, stop), daemon=True)
        for pid, n in ((101, 3), (102, 4))
    ]
    for worker in workers:
        worker.start()
    try:
        control = PodControl(tmp_path, lambda: [101, 102], poll_s=0.01)
        assert control.drain(5.0) == {
            "workers": 2,
            "workers_drained": 2,
            "sessions": 7,
            "remaining": 0,
            "cancelled": 0,
        }
        assert control.state()["draining"] is True
        assert control.undrain(wait_s=5.0) == {"workers": 2, "workers_accepting": 2}
        assert control.state()["draining"] is False
    finally:
        stop.set()


def test_a_drain_that_runs_out_counts_what_is_left(tmp_path: Path) -> None:
    # Worker 201 never finishes (its clients stay); worker 202 never reported at all.
    pod_state.write_worker(tmp_path, WorkerState(pid=201, sessions=5, draining=True))
    control = PodControl(tmp_path, lambda: [201, 202], poll_s=0.01, grace_s=0.0)
    started = time.monotonic()
    result = control.drain(0.2)
    assert time.monotonic() - started < 2
    assert result == {
        "workers": 2,
        "workers_drained": 0,
        "sessions": 0,
        "remaining": 5,
        "cancelled": 0,
    }
    state = control.state()
    assert state["workers"] == [
        {
            "pid": 201,
            "sessions": 5,
            "draining": True,
            "drain_id": None,
            "drained_sessions": None,
            "remaining": None,
        },
        {"pid": 202, "starting": True},
    ]


def test_one_drain_at_a_time_and_an_undrain_calls_it_off(tmp_path: Path) -> None:
    control = PodControl(tmp_path, lambda: [301], poll_s=0.01, grace_s=0.0)
    results: list[dict[str, int]] = []
    running = threading.Thread(target=lambda: results.append(control.drain(60.0)))
    started = time.monotonic()
    running.start()
    try:
        # The flag is written under the lock: from then on the drain runs.
        poll_until(lambda: pod_state.read_flag(tmp_path) is not None, 5, "the drain to start")
        with pytest.raises(Busy):
            control.drain(0.1)
        assert control.undrain(wait_s=0.0)["workers"] == 1
    finally:
        running.join(10)
    assert time.monotonic() - started < 10, "the undrain ended the 60 s drain"
    assert results[0]["cancelled"] == 1
    assert pod_state.read_flag(tmp_path) is None


def test_the_flag_is_read_again_only_when_replaced(tmp_path: Path) -> None:
    watch = FlagWatch(tmp_path)
    assert watch.current() is None
    pod_state.write_flag(tmp_path, pod_state.DrainFlag("first", time.time() + 10))
    first = watch.current()
    assert first is not None
    assert first.drain_id == "first"
    assert watch.current() is first  # unchanged file: not parsed again
    pod_state.write_flag(tmp_path, pod_state.DrainFlag("second", time.time() + 10))
    second = watch.current()
    assert second is not None
    assert second.drain_id == "second"
    pod_state.clear_flag(tmp_path)
    assert watch.current() is None


def test_a_new_master_starts_undrained(tmp_path: Path) -> None:
    pod_state.write_flag(tmp_path, pod_state.DrainFlag("old", time.time() + 10))
    pod_state.write_worker(tmp_path, WorkerState(pid=401, sessions=1, draining=True))
    (tmp_path / "unrelated").write_text("kept")
    pod_state.reset(tmp_path)
    assert pod_state.read_flag(tmp_path) is None
    assert pod_state.read_worker(tmp_path, 401) is None
    assert (tmp_path / "unrelated").exists()
