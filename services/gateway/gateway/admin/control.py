"""The master's drain, undrain and state for the whole pod: it writes the drain flag and
waits on the files its workers write (admin/pod_state.py). Standard library only."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gateway.admin import pod_state
from gateway.admin.pod_state import DrainFlag, WorkerState


class Busy(Exception):
    """Another drain or undrain of this pod is under way."""


class PodControl:
    def __init__(
        self,
        path: Path,
        live_pids: Callable[[], list[int]],
        *,
        poll_s: float = 0.05,
        grace_s: float = 5.0,
    ) -> None:
        """`live_pids`: the master's current workers. A drain waits up to its timeout plus
        `grace_s`: each worker sees the flag within its one-second tick, and closes the
        clients still there at the deadline."""
        self._path = path
        self._live_pids = live_pids
        self._poll_s = poll_s
        self._grace_s = grace_s
        self._lock = threading.Lock()

    def drain(self, timeout_s: float) -> dict[str, int]:
        """Drain every worker; return when each one's drain returned (its clients moved,
        or the deadline closed them with 1012), an undrain called it off, or the wait ran
        out. One drain at a time (`Busy`)."""
        with self._exclusive():
            drain_id = secrets.token_hex(8)
            pod_state.write_flag(self._path, DrainFlag(drain_id, time.time() + timeout_s))
            limit = time.monotonic() + timeout_s + self._grace_s
            cancelled = False
            while True:
                states = self._states()
                done = [s for s in states.values() if s is not None and _drained(s, drain_id)]
                flag = pod_state.read_flag(self._path)
                cancelled = flag is None or flag.drain_id != drain_id
                if len(done) == len(states) or cancelled or time.monotonic() > limit:
                    break
                time.sleep(self._poll_s)
            unfinished = [s for s in states.values() if s is not None and not _drained(s, drain_id)]
            return {
                "workers": len(states),
                "workers_drained": len(done),
                "sessions": sum(s.drained_sessions or 0 for s in done),
                "remaining": sum(s.remaining or 0 for s in done)
                + sum(s.sessions for s in unfinished),
                "cancelled": int(cancelled),
            }

    def undrain(self, wait_s: float = 5.0) -> dict[str, int]:
        """Every worker accepts sessions again (readiness back to 200). Also during a
        drain, which it calls off: the clients not yet gone stay, and are not closed at
        the drain's deadline."""
        pod_state.clear_flag(self._path)
        limit = time.monotonic() + wait_s
        while True:
            states = self._states()
            accepting = [s for s in states.values() if s is not None and not s.draining]
            if len(accepting) == len(states) or time.monotonic() > limit:
                break
            time.sleep(self._poll_s)
        return {"workers": len(states), "workers_accepting": len(accepting)}

    def state(self) -> dict[str, Any]:
        flag = pod_state.read_flag(self._path)
        states = self._states()
        return {
            "draining": flag is not None,
            "drain_id": flag.drain_id if flag else None,
            "sessions": sum(s.sessions for s in states.values() if s is not None),
            "workers": [
                asdict(s) if s is not None else {"pid": pid, "starting": True}
                for pid, s in sorted(states.items())
            ],
        }

    def _states(self) -> dict[int, WorkerState | None]:
        return {pid: pod_state.read_worker(self._path, pid) for pid in self._live_pids()}

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise Busy("a drain or undrain of this pod is under way")
        try:
            yield
        finally:
            self._lock.release()


def _drained(state: WorkerState, drain_id: str) -> bool:
    return state.drain_id == drain_id and state.remaining is not None
