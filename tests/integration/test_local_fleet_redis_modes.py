"""`REDIS_MODE=sentinel make up` and `REDIS_MODE=cluster make up`, for real, on free ports:
the fleet starts its replicated Redis under supervisor and a session through NGINX gets
its exact transcript."""

from __future__ import annotations

import contextlib
import random
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from deploy.local.settings import FleetSettings
from tests.integration.test_local_fleet import Fleet, all_healthy, distinct_free_ports, stop_fleet
from tests.support.ha_sessions import noise, run_sdk
from tests.support.processes import poll_until, start
from tests.support.riva_direct import direct_finals
from tests.support.ws import frames

pytestmark = pytest.mark.integration


def free_redis_ports(mode: str) -> int:
    """A base port whose Redis ports, and their sentinel or cluster bus ports, are free."""
    offsets = {"sentinel": [0, 1, 20000, 20001, 20002], "cluster": [*range(6)]}[mode]
    if mode == "cluster":
        offsets += [o + 10000 for o in offsets]
    while True:
        base = random.randint(20000, 45000)
        with contextlib.ExitStack() as stack:
            try:
                for offset in offsets:
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", base + offset))
            except OSError:
                continue
        return base


@pytest.mark.parametrize("mode", ["sentinel", "cluster"])
async def test_fleet_in_redis_mode(mode: str, tmp_path: Path, log_dir: Path) -> None:
    nginx, gateway_1, gateway_2, asr, admin_1, admin_2 = distinct_free_ports(6)
    redis_port = free_redis_ports(mode)
    env = {
        "FLEET_RUN_DIR": str(tmp_path / "run"),
        "FLEET_NGINX_PORT": str(nginx),
        "FLEET_GATEWAY_PORTS": f"{gateway_1},{gateway_2}",
        "FLEET_GATEWAY_ADMIN_PORTS": f"{admin_1},{admin_2}",
        "FLEET_ASR_PORT": str(asr),
        "FLEET_REDIS_PORT": str(redis_port),
        "ASR_ENGINE": "synthetic",
        "FLEET_LOGS": "files",
        "REDIS_MODE": mode,
    }
    settings = FleetSettings.from_env(env)

    def ready() -> bool:
        url = f"http://127.0.0.1:{nginx}/api/v1/health/ready"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200) and all_healthy(settings)

    proc = start(
        f"fleet-{mode}-{nginx}",
        [sys.executable, "-m", "deploy.local.fleet"],
        log_dir,
        port=nginx,
        env=env,
        ready=ready,
        ready_timeout=120,
    )
    fleet = Fleet(proc, settings)
    try:
        status = dict(line.split()[:2] for line in fleet.ctl("status").splitlines())
        if mode == "sentinel":
            for name in ("redis", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"):
                assert status[name] == "RUNNING", status
            with redis.Redis(port=settings.sentinel_ports[0], decode_responses=True) as s:
                primary = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
            assert int(primary[1]) == redis_port

            def replica_online() -> bool:
                with redis.Redis(port=redis_port, decode_responses=True) as node:
                    return bool(node.info("replication")["slave0"]["state"] == "online")

            poll_until(replica_online, 60, "the replica in sync (what WAIT 1 needs)")
        else:
            assert status["redis-cluster-create"] == "EXITED", status
            with redis.Redis(port=redis_port, decode_responses=True) as node:
                info = node.execute_command("CLUSTER", "INFO")
                assert "cluster_state:ok" in str(info)
                assert "cluster_size:3" in str(info)
        audio = noise(4.0, 81)
        reference = await direct_finals(f"127.0.0.1:{asr}", frames(audio, 3200))
        run = await run_sdk(
            f"ws://127.0.0.1:{nginx}", audio, f"fleet-{mode}-{time.time_ns()}", speed=0
        )
        assert [(f.text, int(f.raw["end_ms"])) for f in run.finals] == reference
        assert run.committed, "committed: a replica acknowledged the finals"
    finally:
        stop_fleet(fleet)
