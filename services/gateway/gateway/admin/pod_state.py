"""The files through which the gunicorn master and its workers share the pod's admin
state, in the pod's run dir (`GATEWAY_RUN_DIR`):

- `drain.json`, written by the master: while it exists the pod is drained. Every worker
  reads it on its once-a-second tick (one `os.stat`), and so does a worker that gunicorn
  starts while the pod is drained, before it takes its first session.
- `worker-<pid>.json`, written by each worker: its session count, whether it drains, and
  the result of the drain it ran for the flag it last saw. The master adds them up.

Standard library only: the master imports this, and nothing it imports may load what the
workers must load themselves after the fork.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ENV = "GATEWAY_RUN_DIR"
_FLAG = "drain.json"
_WORKER_PREFIX = "worker-"
# Directories this master made itself, removed when it exits.
_created: list[str] = []


@dataclass(frozen=True)
class DrainFlag:
    """A drain asked of the pod: `drain_id` tells one drain from the next, `deadline` (Unix
    time) is when clients still connected get closed with 1012."""

    drain_id: str
    deadline: float


@dataclass(frozen=True)
class WorkerState:
    pid: int
    sessions: int
    draining: bool
    # The drain this worker ran (the flag's id) and, once it returned, its counts.
    drain_id: str | None = None
    drained_sessions: int | None = None
    remaining: int | None = None


def use_run_dir() -> Path:
    """The directory from the environment, or a new private one for this master (two
    gateways on one machine must not share one); exported for the workers."""
    path = os.environ.get(ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="gateway-run-")
        _created.append(path)
    os.environ[ENV] = path
    return Path(path)


def run_dir() -> Path | None:
    """The pod's run dir, or None outside gunicorn (uvicorn alone, in-process tests)."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def reset(path: Path) -> None:
    """A new master starts undrained: state of a previous run (a restarted container)
    must not drain the new one."""
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        if child.name == _FLAG or child.name.startswith(_WORKER_PREFIX):
            child.unlink(missing_ok=True)


def remove_created() -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)


def write_flag(path: Path, flag: DrainFlag) -> None:
    _write_json(path / _FLAG, asdict(flag))


def clear_flag(path: Path) -> None:
    (path / _FLAG).unlink(missing_ok=True)


def read_flag(path: Path) -> DrainFlag | None:
    data = _read_json(path / _FLAG)
    if data is None:
        return None
    return DrainFlag(drain_id=str(data["drain_id"]), deadline=float(data["deadline"]))


class FlagWatch:
    """A worker's view of the flag: one `os.stat` per call, the file read only when it
    changed (the master replaces it whole, so a new flag is a new inode)."""

    def __init__(self, path: Path) -> None:
        self._path = path / _FLAG
        self._seen: tuple[int, int] | None = None
        self._flag: DrainFlag | None = None

    def current(self) -> DrainFlag | None:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            self._seen = self._flag = None
            return None
        key = (stat.st_ino, stat.st_mtime_ns)
        if key != self._seen:
            self._flag = read_flag(self._path.parent)
            self._seen = key if self._flag is not None else None
        return self._flag


def worker_path(path: Path, pid: int) -> Path:
    return path / f"{_WORKER_PREFIX}{pid}.json"


def write_worker(path: Path, state: WorkerState) -> None:
    _write_json(worker_path(path, state.pid), asdict(state))


def read_worker(path: Path, pid: int) -> WorkerState | None:
    data = _read_json(worker_path(path, pid))
    return WorkerState(**data) if data is not None else None


def forget_worker(path: Path, pid: int) -> None:
    worker_path(path, pid).unlink(missing_ok=True)


def _write_json(target: Path, data: dict[str, Any]) -> None:
    # Written aside and renamed: a reader sees the old file or the new one, never half.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(source: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(source.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
