"""gunicorn hooks for prometheus-client's multiprocess mode: each worker writes its
values to files in `PROMETHEUS_MULTIPROC_DIR` and `/metrics` (in any worker) adds them.

prometheus_client picks its storage when first imported, and workers are forked from
the master: so the directory is chosen (`use_multiprocess_dir`) before anything imports
prometheus_client, and this module imports it only inside the hooks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
# Directories this master made itself, removed when it exits.
_created: list[str] = []


def use_multiprocess_dir() -> str:
    """The directory from the environment, or a new private one for this master (two
    gateways on one machine must not share one)."""
    path = os.environ.get(ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="gateway-metrics-")
        _created.append(path)
    os.environ[ENV] = path
    return path


def on_starting(server: Any) -> None:
    """Master start: values of a previous run (a restarted container) would add up."""
    path = Path(os.environ[ENV])
    if path.exists():
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (or was killed): its `live*` gauges stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Master exit: remove the directory if this master made it."""
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
