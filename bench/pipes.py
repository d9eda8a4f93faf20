"""Child processes of a run that speak JSON lines on stdin/stdout (the load generators,
`make bench-redis`'s client processes): one line out, one line in, each bounded in time."""

from __future__ import annotations

import selectors
import subprocess
from typing import IO, Any

import orjson


def send_line(stream: IO[bytes] | None, obj: dict[str, Any]) -> None:
    assert stream is not None
    stream.write(orjson.dumps(obj) + b"\n")
    stream.flush()


def read_json_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The next JSON line the child prints, within `timeout` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"process {proc.pid} said nothing in {timeout:g} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"process {proc.pid} exited with {proc.wait()}")
    result: dict[str, Any] = orjson.loads(line)
    return result


def end(proc: subprocess.Popen[bytes], wait: float = 5) -> None:
    """Wait for the child to exit on its own; kill it (by its pid) if it does not."""
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
