"""`python -m deploy.local.fleet` (what `make up` runs), for real, on free ports: NGINX,
two gateways, Redis and the CPU speech server (synthetic engine) under supervisor."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local.settings import FleetSettings
from deploy.local.supervisor_conf import supervisorctl_argv
from tests.support.processes import Proc, poll_until, port_open, start

pytestmark = pytest.mark.integration


@dataclass
class Fleet:
    proc: Proc
    settings: FleetSettings

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            supervisorctl_argv(self.settings, *args), capture_output=True, text=True, timeout=60
        )
        return result.stdout.strip()

    def pid_of(self, program: str) -> int:
        return int(self.ctl("pid", program))

    def all_running(self) -> bool:
        lines = self.ctl("status").splitlines()
        return len(lines) >= 6 and all(line.split()[1] == "RUNNING" for line in lines)


def start_fleet(run_dir: Path, log_dir: Path) -> Fleet:
    nginx, gateway_1, gateway_2, asr, redis, asr_metrics, prometheus, admin_1, admin_2 = (
        distinct_free_ports(9)
    )
    env = {
        "FLEET_RUN_DIR": str(run_dir),
        "FLEET_NGINX_PORT": str(nginx),
        "FLEET_GATEWAY_PORTS": f"{gateway_1},{gateway_2}",
        "FLEET_GATEWAY_ADMIN_PORTS": f"{admin_1},{admin_2}",
        "FLEET_ASR_PORT": str(asr),
        "FLEET_REDIS_PORT": str(redis),
        "FLEET_ASR_METRICS_PORT": str(asr_metrics),
        "FLEET_PROMETHEUS_PORT": str(prometheus),
        "ASR_ENGINE": "synthetic",
        "FLEET_LOGS": "terminal",
    }
    settings = FleetSettings.from_env(env)
    proc = start(
        f"fleet-{nginx}",
        [sys.executable, "-m", "deploy.local.fleet"],
        log_dir,
        port=nginx,
        env=env,
        ready=lambda: all_healthy(settings),
        ready_timeout=120,
    )
    return Fleet(proc, settings)


def stop_fleet(fleet: Fleet) -> None:
    """SIGINT, as Ctrl-C; whatever is still there after a bound is killed by pid."""
    leftovers = descendants(fleet.proc.pid)
    if fleet.proc.alive():
        fleet.proc.popen.send_signal(signal.SIGINT)
        try:
            fleet.proc.popen.wait(90)
        except subprocess.TimeoutExpired:
            fleet.proc.popen.kill()
            fleet.proc.popen.wait(10)
    for pid in leftovers:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Fleet]:
    running = start_fleet(tmp_path_factory.mktemp("fleet") / "run", log_dir)
    try:
        yield running
    finally:
        stop_fleet(running)


def test_nginx_answers_health_through_each_gateway(fleet: Fleet) -> None:
    poll_until(fleet.all_running, 60, "every program RUNNING")
    nginx_port = fleet.settings.nginx_port
    for stopped, other in (("gateway-2", "gateway-1"), ("gateway-1", "gateway-2")):
        # With one gateway stopped, every answer through NGINX comes from the other one.
        assert "stopped" in fleet.ctl("stop", stopped)
        try:
            # NGINX holds a server it failed to reach as down for `fail_timeout` (2 s): the
            # one restarted in the previous round may still be held so for a moment.
            poll_until(lambda: health(nginx_port) == 200, 10, f"NGINX answering via {other}")
            for _ in range(10):
                assert health(nginx_port) == 200, f"through {other}"
        finally:
            fleet.ctl("start", stopped)
        poll_until(lambda: all_healthy(fleet.settings), 60, "both gateways healthy again")


def test_gateway_killed_with_sigkill_is_restarted_while_nginx_keeps_answering(
    fleet: Fleet,
) -> None:
    poll_until(fleet.all_running, 60, "every program RUNNING")
    port = fleet.settings.gateway_ports[0]
    old_pid = fleet.pid_of("gateway-1")
    old_workers = descendants(old_pid)
    assert old_workers, "gunicorn master without workers"

    os.kill(old_pid, signal.SIGKILL)

    # Meanwhile NGINX answers through gateway-2.
    assert health(fleet.settings.nginx_port) == 200
    poll_until(lambda: fleet.pid_of("gateway-1") not in (0, old_pid), 60, "a new gateway-1")
    poll_until(lambda: health(port) == 200, 60, "the new gateway-1 to answer")
    poll_until(fleet.all_running, 60, "every program RUNNING again")
    # The old master's workers did not outlive it (they would hold the port).
    poll_until(lambda: not any(alive(pid) for pid in old_workers), 10, "old workers gone")


def test_prometheus_scrapes_every_gateway_and_the_speech_server(fleet: Fleet) -> None:
    poll_until(fleet.all_running, 60, "every program RUNNING")
    url = f"http://127.0.0.1:{fleet.settings.prometheus_port}/api/v1/targets"

    def targets_up() -> dict[str, str]:
        with urllib.request.urlopen(url, timeout=5) as response:
            active = json.load(response)["data"]["activeTargets"]
        return {t["labels"]["pod"]: t["health"] for t in active}

    poll_until(
        lambda: targets_up() == {"gateway-1": "up", "gateway-2": "up", "asr-cpu": "up"},
        60,
        "Prometheus to scrape every target",
    )
    rules_url = f"http://127.0.0.1:{fleet.settings.prometheus_port}/api/v1/rules"
    with urllib.request.urlopen(rules_url, timeout=5) as response:
        groups = json.load(response)["data"]["groups"]
    assert "SpeechBackendUnavailable" in {r["name"] for g in groups for r in g["rules"]}


def test_sigint_stops_every_program_of_the_fleet(tmp_path: Path, log_dir: Path) -> None:
    fleet = start_fleet(tmp_path / "run", log_dir)
    try:
        poll_until(fleet.all_running, 60, "every program RUNNING")
        children = descendants(fleet.proc.pid)
        assert len(children) >= 7  # reaper, redis, asr-cpu, 2 gunicorn masters + workers, nginx

        fleet.proc.popen.send_signal(signal.SIGINT)

        assert fleet.proc.popen.wait(90) == 0
        assert [pid for pid in children if alive(pid)] == []
        assert [p for p in fleet.settings.all_ports() if port_open(p)] == []
    finally:
        stop_fleet(fleet)


def health(port: int) -> int:
    url = f"http://127.0.0.1:{port}/api/v1/health/live"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def all_healthy(settings: FleetSettings) -> bool:
    ports = [settings.nginx_port, *settings.gateway_ports]
    return all(health(port) == 200 for port in ports)


def distinct_free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
