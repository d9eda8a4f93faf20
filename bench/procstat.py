"""What /proc says about a process tree and the cores: CPU ticks, resident memory.

Pure parsers of /proc texts (unit-tested on sample texts) plus the thin readers that
feed them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _fields_after_comm(stat_text: str) -> list[str]:
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    return stat_text[stat_text.rindex(")") + 2 :].split()


def cpu_ticks_from_stat(stat_text: str) -> int:
    """utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks, of all the
    process's threads."""
    rest = _fields_after_comm(stat_text)
    return int(rest[11]) + int(rest[12])


def ppid_from_stat(stat_text: str) -> int:
    return int(_fields_after_comm(stat_text)[1])


def rss_kb_from_status(status_text: str) -> int:
    """VmRSS of /proc/PID/status, in kB (0 for a kernel thread or a zombie)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def core_times_from_proc_stat(text: str) -> dict[int, tuple[int, int]]:
    """Per core, (busy, total) ticks from /proc/stat's `cpuN` lines. Idle and iowait are
    idle; guest time is already inside user time, so it is not added again."""
    cores: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *values = line.split()
        ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        idle = ticks[3] + ticks[4]
        total = sum(ticks)
        cores[int(name[3:])] = (total - idle, total)
    return cores


def cpu_percent(ticks_delta: int, seconds: float, clk_tck: int = CLK_TCK) -> float:
    """CPU time over a wall-clock interval, as % of one core."""
    if seconds <= 0:
        return 0.0
    return 100.0 * ticks_delta / clk_tck / seconds


def core_busy_percent(
    before: Mapping[int, tuple[int, int]], after: Mapping[int, tuple[int, int]]
) -> dict[int, float]:
    busy: dict[int, float] = {}
    for core, (busy_after, total_after) in after.items():
        busy_before, total_before = before.get(core, (0, 0))
        total = total_after - total_before
        busy[core] = 100.0 * (busy_after - busy_before) / total if total > 0 else 0.0
    return busy


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # the process ended
        return ""


def descendants(root: int) -> list[int]:
    """`root` and every process below it (gunicorn's master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        text = _read(entry / "stat")
        if text:
            children.setdefault(ppid_from_stat(text), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_ticks(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        text = _read(PROC / str(pid) / "stat")
        if text:
            total += cpu_ticks_from_stat(text)
    return total


def tree_rss_kb(pids: Iterable[int]) -> int:
    return sum(rss_kb_from_status(_read(PROC / str(pid) / "status")) for pid in pids)


def core_times() -> dict[int, tuple[int, int]]:
    return core_times_from_proc_stat(_read(PROC / "stat"))


@dataclass(frozen=True)
class Group:
    """Processes measured together (a gateway's master and worker, say)."""

    name: str
    pids: tuple[int, ...]

    def ticks(self) -> int:
        return tree_cpu_ticks(self.pids)

    def rss_kb(self) -> int:
        return tree_rss_kb(self.pids)


def cpu_info_from_text(text: str) -> dict[str, str | float | None]:
    """The first core's model name, clock (MHz, as /proc/cpuinfo reads now) and
    BogoMIPS, from /proc/cpuinfo's text: what the machine's core speed was."""
    info: dict[str, str | float | None] = {"model": None, "mhz": None, "bogomips": None}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and info["model"] is None:
            info["model"] = value
        elif key == "cpu mhz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "bogomips" and info["bogomips"] is None:
            info["bogomips"] = float(value)
    return info


def cpu_info() -> dict[str, str | float | None]:
    return cpu_info_from_text(_read(PROC / "cpuinfo"))
