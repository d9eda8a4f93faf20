"""Run N sessions, started evenly over a ramp-up, with a live progress line."""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from speech_client.client import ClientOptions
from speech_client.config import TranscriptionConfig
from speech_client.loadtest.session import run_session
from speech_client.loadtest.sources import FramePlan
from speech_client.loadtest.stats import LoadStats

PROGRESS_INTERVAL_S = 1.0
_CLEAR_LINE = "\r\x1b[K"


@dataclass(frozen=True, slots=True)
class LoadTestOptions:
    url: str
    sessions: int
    frame_ms: int = 100
    ramp_up_s: float = 0.0
    speed: float = 1.0
    config: TranscriptionConfig | None = None
    client: ClientOptions = field(default_factory=ClientOptions)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def session_id(self, index: int) -> str:
        return f"lt-{self.run_id}-{index:05d}"

    def start_delay_s(self, index: int) -> float:
        return self.ramp_up_s * index / self.sessions


@dataclass(frozen=True, slots=True)
class LoadRun:
    """The stats of a finished run, with its wall time and the load generator's cost."""

    options: LoadTestOptions
    plans: Sequence[FramePlan]
    stats: LoadStats
    wall_s: float
    cpu_s: float  # user + system CPU of this process during the run
    max_rss_kib: int


async def run_load_test(
    options: LoadTestOptions, plans: Sequence[FramePlan], progress: TextIO | None = None
) -> LoadRun:
    """Run the sessions (plans cycled across them) to their ends; `progress`, if given,
    gets a status line updated once a second."""
    stats = LoadStats(options.sessions)
    all_done = asyncio.Event()
    wall0, cpu0 = time.monotonic(), time.process_time()

    async def session_at(index: int) -> None:
        await asyncio.sleep(options.start_delay_s(index))
        try:
            await run_session(
                options.url,
                plans[index % len(plans)],
                options.session_id(index),
                stats,
                frame_ms=options.frame_ms,
                speed=options.speed,
                config=options.config,
                options=options.client,
            )
        finally:
            if stats.finished >= options.sessions:
                all_done.set()

    async with asyncio.TaskGroup() as group:
        for index in range(options.sessions):
            group.create_task(session_at(index), name=options.session_id(index))
        if progress is not None:
            group.create_task(_show_progress(stats, all_done, progress, wall0))
    return LoadRun(
        options,
        plans,
        stats,
        wall_s=time.monotonic() - wall0,
        cpu_s=time.process_time() - cpu0,
        max_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )


async def _show_progress(
    stats: LoadStats, all_done: asyncio.Event, out: TextIO, wall0: float
) -> None:
    last_finals, last_t = 0, time.monotonic()
    try:
        while not all_done.is_set():
            try:
                async with asyncio.timeout(PROGRESS_INTERVAL_S):
                    await all_done.wait()
            except TimeoutError:
                now = time.monotonic()
                rate = (stats.finals - last_finals) / (now - last_t)
                last_finals, last_t = stats.finals, now
                out.write(f"{_CLEAR_LINE}{progress_line(stats, now - wall0, rate)}")
                out.flush()
    finally:
        out.write(_CLEAR_LINE)
        out.flush()


def progress_line(stats: LoadStats, elapsed_s: float, finals_per_s: float) -> str:
    return (
        f"{elapsed_s:5.0f} s  active {stats.active}  done {stats.finished}/{stats.sessions}"
        f"  finals/s {finals_per_s:.1f}  errors {stats.failed}  resumes {stats.resumes}"
    )
