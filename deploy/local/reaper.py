"""A supervisor event listener that kills what a dead program left behind.

Supervisor starts each program in its own process group (pgid = the program's pid). When
a program's main process dies without cleaning up (a gunicorn master or NGINX master
killed with -9), its workers live on, keep the listening socket and keep answering, and
the restarted program cannot bind its port. On every PROCESS_STATE_EXITED event this
listener sends SIGKILL to the old process group, so the restart gets a clean port.
"""

from __future__ import annotations

import os
import signal
import sys

from supervisor import childutils


def reap(payload: str) -> str | None:
    """Kill the process group of the exited process described by `payload`.

    Returns a line for the log when something was left to kill.
    """
    headers = childutils.get_headers(payload.split("\n", 1)[0])
    name, pid = headers.get("processname", "?"), int(headers.get("pid", "0"))
    if pid <= 1:
        return None
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return None
    return f"reaper: {name} exited, killed its leftover processes (process group {pid})"


def main() -> None:
    # Stopped with the fleet: a clean exit, not a "terminated by SIGTERM" warning.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        if headers.get("eventname") == "PROCESS_STATE_EXITED":
            line = reap(payload)
            if line:
                print(line, file=sys.stderr, flush=True)
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
