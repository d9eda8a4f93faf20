"""A worker's side of the pod's admin state: it follows the master's drain flag.

Once a second (one `os.stat`, never per frame) it checks the flag: a new flag drains this
worker (readiness fails, new sessions refused, each client gets `reconnect`, as on
SIGTERM); no flag after a drain accepts sessions again. It reports its session count and
its drain's result in its own file, which the master reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.admin import pod_state
from gateway.admin.pod_state import DrainFlag, FlagWatch, WorkerState

if TYPE_CHECKING:
    from gateway.sessions.service import SessionService

log = logging.getLogger(__name__)


class DrainFollower:
    def __init__(
        self,
        service: SessionService,
        path: Path,
        *,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """`stopping`: true once the process drains for its own exit (SIGTERM); an
        undrain then leaves it draining."""
        self._service = service
        self._path = path
        self._stopping = stopping
        self._watch = FlagWatch(path)
        self._pid = os.getpid()
        self._drain_id: str | None = None
        self._result: dict[str, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._written: WorkerState | None = None

    def sync(self) -> None:
        """Follow the flag now: called once before the worker takes its first session (a
        worker started while the pod is drained comes up drained), then every tick."""
        flag = self._watch.current()
        if flag is not None and flag.drain_id != self._drain_id:
            self._begin(flag)
        elif flag is None and self._drain_id is not None:
            self._undrain()
        self._publish()

    async def run(self, tick_s: float = 1.0) -> None:
        """The tick; on cancellation the drain it started is cancelled and its file removed."""
        try:
            while True:
                await asyncio.sleep(tick_s)
                try:
                    self.sync()
                except OSError:
                    log.exception("cannot follow the pod's drain state")
        finally:
            await self._cancel_drain()
            with contextlib.suppress(OSError):
                pod_state.forget_worker(self._path, self._pid)

    def _begin(self, flag: DrainFlag) -> None:
        self._cancel_drain_soon()
        self._drain_id, self._result = flag.drain_id, None
        self._service.draining = True
        timeout_s = max(0.0, flag.deadline - time.time())
        self._task = asyncio.create_task(self._drain(flag.drain_id, timeout_s), name="admin-drain")

    async def _drain(self, drain_id: str, timeout_s: float) -> None:
        try:
            result = await self._service.drain(timeout_s)
        except Exception:
            log.exception("drain failed")
            return
        if self._drain_id == drain_id:
            self._result = result
            # At once, not on the next tick: the master is waiting for it (and if this
            # write fails, the next tick's will carry it).
            with contextlib.suppress(OSError):
                self._publish()

    def _undrain(self) -> None:
        # A drain still waiting for its clients stops here: it would otherwise close the
        # sessions this worker takes again, at its deadline.
        self._cancel_drain_soon()
        self._drain_id = self._result = None
        if not self._stopping():
            self._service.draining = False
            log.info("undrained: accepting sessions again")

    def _cancel_drain_soon(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _cancel_drain(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _publish(self) -> None:
        result = self._result or {}
        state = WorkerState(
            pid=self._pid,
            sessions=len(self._service.registry.sessions),
            draining=self._service.draining,
            drain_id=self._drain_id,
            drained_sessions=result.get("sessions"),
            remaining=result.get("remaining"),
        )
        if state != self._written:
            pod_state.write_worker(self._path, state)
            self._written = state


def start_following(service: SessionService, stopping: Callable[[], bool]) -> DrainFollower | None:
    """The follower of this process's pod, synced once; None outside gunicorn."""
    path = pod_state.run_dir()
    if path is None:
        return None
    follower = DrainFollower(service, path, stopping=stopping)
    follower.sync()
    return follower
