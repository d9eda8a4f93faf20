"""The closed admin surface (docs/admin.md): drain, undrain, state and /metrics on the
gunicorn master's admin port behind a bearer token, covering every worker of the pod;
nothing of it (nor the interactive docs) on the public port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from tests.support.fixtures_fleet import NginxFactory
from tests.support.fixtures_gateway import admin_port_of, admin_post, http_get, start_gateway
from tests.support.metrics import samples
from tests.support.processes import REPO, VENV_BIN, Proc, free_port, poll_until
from tests.support.ws import next_event, open_ws, start

pytestmark = pytest.mark.integration

TOKEN = "admin-test-token-0123456789"


@pytest.fixture(scope="module")
def pod(log_dir: Path, redis_url: str, asr_synthetic_server: Proc) -> Iterator[Proc]:
    """A pod with two workers and an admin token."""
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        name="gateway-admin",
        env={"WEB_CONCURRENCY": "2", "ADMIN__TOKEN": TOKEN, "LIMITS__DRAIN_TIMEOUT_S": "20"},
    )
    try:
        poll_until(lambda: len(_state(proc)["workers"]) == 2, 20, "two workers")
        poll_until(
            lambda: all("sessions" in w for w in _state(proc)["workers"]), 20, "both workers up"
        )
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def other(log_dir: Path, redis_url: str, asr_synthetic_server: Proc) -> Iterator[Proc]:
    """Another pod of the same fleet, where drained sessions resume."""
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        name="gateway-admin-other",
    )
    yield proc
    proc.stop()


def _admin(
    pod: Proc, method: str, path: str, token: str | None = TOKEN
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port_of(pod)}{path}", method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def _state(pod: Proc) -> dict[str, Any]:
    status, body, _ = _admin(pod, "GET", "/admin/state")
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def _public(pod: Proc, method: str, path: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{pod.port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def _ready(pod: Proc) -> int:
    return http_get(f"http://127.0.0.1:{pod.port}/api/v1/health/ready")[0]


def _accepting_on_every_worker(pod: Proc, expected: bool) -> bool:
    """Readiness's `accepting` check (the drain's part of it) on 20 requests in a row:
    each lands on whichever worker accepts it, so both are covered. A drained pod is
    also not ready (503)."""
    for _ in range(20):
        status, body = http_get(f"http://127.0.0.1:{pod.port}/api/v1/health/ready")
        if json.loads(body)["checks"]["accepting"] != expected:
            return False
        if not expected and status != 503:
            return False
    return True


def _ready_again(pod: Proc) -> None:
    """Accepting on every worker at once, and ready (200) once the other checks, which
    a loaded machine can fail for a moment (loop lag), pass too."""
    assert _accepting_on_every_worker(pod, True)
    poll_until(lambda: all(_ready(pod) == 200 for _ in range(20)), 20, "the pod to be ready")


def test_the_public_port_serves_no_admin_route_no_metrics_and_no_docs(pod: Proc) -> None:
    assert _public(pod, "POST", "/admin/drain?timeout_s=1") == 404
    assert _public(pod, "POST", "/admin/undrain") == 404
    assert _public(pod, "GET", "/admin/state") == 404
    assert _public(pod, "GET", "/metrics") == 404
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert _public(pod, "GET", path) == 404, path
    # Nothing drained by the attempt.
    assert not _state(pod)["draining"]


def test_nothing_of_the_admin_surface_is_reachable_through_nginx(
    pod: Proc, nginx_factory: NginxFactory
) -> None:
    nginx = nginx_factory([pod.port])
    for method, path in [
        ("POST", "/admin/drain?timeout_s=1"),
        ("POST", "/admin/undrain"),
        ("GET", "/admin/state"),
        ("GET", "/metrics"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ]:
        assert _public(nginx, method, path) in (403, 404), (method, path)
    assert not _state(pod)["draining"]
    # The admin port itself is not NGINX's upstream either: the front knows only `pod.port`.
    assert str(admin_port_of(pod)) not in Path(str(nginx.extra["conf"])).read_text()


def test_the_admin_port_requires_the_admin_token(pod: Proc) -> None:
    for method, path in [
        ("GET", "/metrics"),
        ("POST", "/admin/drain?timeout_s=1"),
        ("POST", "/admin/undrain"),
        ("GET", "/admin/state"),
        ("GET", "/nothing-here"),
    ]:
        for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            status, _, headers = _admin(pod, method, path, token=token)
            assert status == 401, (method, path, token)
            assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert not _state(pod)["draining"], "a refused drain drained nothing"
    status, _, headers = _admin(pod, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")

    def capacity() -> float:
        return samples(_admin(pod, "GET", "/metrics")[1].decode())["gateway_sessions_capacity"]

    # Both workers' values, added up by the master (each sets its own once started).
    poll_until(lambda: capacity() == 2 * 500, 20, "both workers' capacity")


def test_drain_then_undrain_makes_the_pod_ready_again(pod: Proc) -> None:
    # Ready once both workers reach Redis and the speech server.
    poll_until(lambda: all(_ready(pod) == 200 for _ in range(20)), 20, "the pod to be ready")
    drained = admin_post(pod, "/admin/drain?timeout_s=5", token=TOKEN)
    assert drained["workers"] == drained["workers_drained"] == 2
    assert _accepting_on_every_worker(pod, False)
    assert all(w["draining"] for w in _state(pod)["workers"])
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_start_one(pod, f"admin-late-{time.time_ns()}"))
    assert refused.value.response.status_code == 503

    undrained = admin_post(pod, "/admin/undrain", token=TOKEN)
    assert undrained == {"workers": 2, "workers_accepting": 2}
    _ready_again(pod)
    assert not _state(pod)["draining"]
    started = asyncio.run(_start_one(pod, f"admin-again-{time.time_ns()}"))
    assert started["event"] == "transcription_started"


def test_a_worker_restarted_while_the_pod_is_drained_comes_up_drained(pod: Proc) -> None:
    admin_post(pod, "/admin/drain?timeout_s=2", token=TOKEN)
    try:
        victim = _state(pod)["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            workers = _state(pod)["workers"]
            pids = {w["pid"] for w in workers}
            started = all("draining" in w for w in workers)
            return len(workers) == 2 and victim not in pids and started

        poll_until(replaced, 30, "gunicorn to replace the killed worker")
        assert all(w["draining"] for w in _state(pod)["workers"])
        assert _accepting_on_every_worker(pod, False)
    finally:
        admin_post(pod, "/admin/undrain", token=TOKEN)
    _ready_again(pod)


def test_a_drain_moves_every_session_of_both_workers(pod: Proc, other: Proc) -> None:
    asyncio.run(_drain_both_workers(pod, other))
    admin_post(pod, "/admin/undrain", token=TOKEN)


def test_an_undrain_calls_off_a_drain_and_its_deadline(pod: Proc) -> None:
    """A client that stays after `reconnect` is not closed at the drain's deadline once
    the pod is undrained: the session goes on."""
    asyncio.run(_undrain_during_a_drain(pod))


async def _undrain_during_a_drain(pod: Proc) -> None:
    async with await open_ws(f"ws://127.0.0.1:{pod.port}", f"admin-stay-{time.time_ns()}") as ws:
        assert (await start(ws))["event"] == "transcription_started"
        await asyncio.to_thread(
            poll_until, lambda: _state(pod)["sessions"] == 1, 10, "the session to count"
        )
        deadline_s = 3.0
        drain = asyncio.create_task(
            asyncio.to_thread(admin_post, pod, f"/admin/drain?timeout_s={deadline_s}", TOKEN)
        )
        assert (await next_event(ws, 10))["event"] == "reconnect"
        # The client stays; the operator takes the pod back before the deadline.
        assert await asyncio.to_thread(admin_post, pod, "/admin/undrain", TOKEN) == {
            "workers": 2,
            "workers_accepting": 2,
        }
        drained = await asyncio.wait_for(drain, 10)
        assert drained["cancelled"] == 1
        # Nothing arrives past the old deadline: no error, no close.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), deadline_s + 2)
        await ws.send(json.dumps({"type": "stop_transcription"}))
        assert (await next_event(ws))["event"] == "transcription_stopped"
    _ready_again(pod)


async def _start_one(pod: Proc, session_id: str) -> dict[str, Any]:
    async with await open_ws(f"ws://127.0.0.1:{pod.port}", session_id) as ws:
        return await start(ws)


async def _drain_both_workers(pod: Proc, other: Proc) -> None:
    stamp = time.time_ns()
    sockets: dict[str, ClientConnection] = {}
    try:
        # At least six sessions, and more until both workers serve some (which worker
        # accepts a connection is the kernel's choice).
        while len(sockets) < 6 or not all(w["sessions"] for w in _state(pod)["workers"]):
            assert len(sockets) < 40, f"one worker took every session: {_state(pod)}"
            session_id = f"admin-move-{len(sockets):02d}-{stamp}"
            ws = await open_ws(f"ws://127.0.0.1:{pod.port}", session_id)
            sockets[session_id] = ws
            assert (await start(ws))["event"] == "transcription_started"
            await asyncio.to_thread(
                poll_until,
                lambda: _state(pod)["sessions"] == len(sockets),
                10,
                "the session to count",
            )
        per_worker = [w["sessions"] for w in _state(pod)["workers"]]
        assert len(per_worker) == 2
        assert min(per_worker) > 0, "both workers serve sessions"
        assert sum(per_worker) == len(sockets)

        async def moved(ws: ClientConnection) -> str:
            # A client that gets `reconnect` leaves: the drain waits for exactly that.
            event = await next_event(ws, 30)
            assert event["event"] == "reconnect", event
            await ws.close()
            return str(event["resume_token"])

        drain = asyncio.to_thread(admin_post, pod, "/admin/drain?timeout_s=20", TOKEN)
        drained, *tokens = await asyncio.gather(drain, *(moved(ws) for ws in sockets.values()))
        assert drained == {
            "workers": 2,
            "workers_drained": 2,
            "sessions": len(sockets),
            "remaining": 0,
            "cancelled": 0,
        }
        # Every session resumes on the other pod with the token its reconnect carried.
        for session_id, token in zip(sockets, tokens, strict=True):
            async with await open_ws(f"ws://127.0.0.1:{other.port}", session_id) as ws:
                resume = {"type": "resume_transcription", "resume_token": token, "last_seq": 0}
                await ws.send(json.dumps(resume))
                assert (await next_event(ws))["event"] == "transcription_resumed"
                await ws.send(json.dumps({"type": "stop_transcription"}))
                assert (await next_event(ws))["event"] == "transcription_stopped"
    finally:
        for ws in sockets.values():
            await ws.close()


def test_only_the_master_holds_the_admin_port(pod: Proc) -> None:
    """Workers close the listening socket they inherit at fork: a worker neither answers
    on the admin port nor keeps it bound after its master is gone."""
    port = admin_port_of(pod)
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
            listening.add(fields[9])
    assert listening

    def holds(pid: int) -> bool:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                return True
        return False

    assert holds(pod.pid)
    workers = [w["pid"] for w in _state(pod)["workers"]]
    assert len(workers) == 2
    assert not any(holds(pid) for pid in workers)


def test_the_prestop_command_drains_and_undrains_every_worker(pod: Proc) -> None:
    """`python -m gateway.admin drain` (the chart's preStop hook) with the pod's own
    environment; without the token it is refused."""
    env = {
        **os.environ,
        "ADMIN__HOST": "127.0.0.1",
        "ADMIN__PORT": str(admin_port_of(pod)),
        "ADMIN__TOKEN": TOKEN,
    }
    command = [sys.executable, "-m", "gateway.admin"]
    refused = subprocess.run(
        [*command, "drain", "--timeout-s", "1"],
        env={**env, "ADMIN__TOKEN": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "401" in refused.stderr
    assert not _state(pod)["draining"]
    drained = subprocess.run(
        [*command, "drain", "--timeout-s", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert drained.returncode == 0, drained.stderr
    assert json.loads(drained.stdout)["workers_drained"] == 2
    assert _accepting_on_every_worker(pod, False)
    undrained = subprocess.run(
        [*command, "undrain"], env=env, capture_output=True, text=True, timeout=60
    )
    assert undrained.returncode == 0, undrained.stderr
    _ready_again(pod)


def test_a_pod_whose_admin_port_is_taken_does_not_start(
    redis_url: str, asr_synthetic_server: Proc
) -> None:
    """No pod that looks healthy without a working drain: the master stops, saying why."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "REDIS__URL": redis_url,
            "RIVA__TARGETS": f"127.0.0.1:{asr_synthetic_server.port}",
            "ADMIN__PORT": str(port),
        }
        argv = [str(VENV_BIN / "gunicorn"), "-c", "services/gateway/gunicorn.conf.py"]
        argv += ["--bind", f"127.0.0.1:{free_port()}", "gateway.main:create_app_from_env()"]
        result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"admin listener on 127.0.0.1:{port}: [Errno 98]" in result.stderr
    assert "Booting worker" not in result.stderr
