"""The local fleet's Redis in each mode (`REDIS_MODE`), as supervisor programs, and what
the gateways are told to reach it.

- single (default): one `redis-server` on the Redis port (6380).
- sentinel: a primary on 6380, its replica on 6381, three `redis-sentinel`s on
  26380-26382 (quorum 2; a primary is down after 2 s). Each start begins with 6380 as the
  primary; a primary killed and restarted by supervisor comes back, and the sentinels
  make it a replica of the one they promoted.
- cluster: six cluster nodes on 6380-6385 (bus ports +10000), made into three primaries
  with a replica each by `redis-cli --cluster create` (the one-shot `redis-cluster-create`
  program, which does nothing when the cluster already exists). A node killed and
  restarted comes back with its `nodes.conf` and rejoins, as a replica if its replica
  was promoted meanwhile.

Data of every node in `run_dir/redis-<port>/` (AOF written once a second, as in single
mode).
"""

from __future__ import annotations

from pathlib import Path

from deploy.local.settings import HOST, FleetSettings
from deploy.local.supervisor_conf import Program

SENTINEL_SERVICE = "mymaster"
# A replica that comes back (restarted after a kill) syncs at once: Redis 7 otherwise
# waits 5 s for more replicas, and no finals are committed (WAIT) meanwhile.
_REPLICATION = ("--repl-diskless-sync-delay", "0")


def redis_programs(settings: FleetSettings) -> list[Program]:
    """The Redis programs of `settings.redis_mode`, all at priority 10 (the one-shot
    cluster creation at 15)."""
    if settings.redis_mode == "sentinel":
        primary, replica = settings.redis_ports
        programs = [
            _server("redis", settings, primary),
            _server("redis-replica", settings, replica, "--replicaof", HOST, str(primary)),
        ]
        for i, port in enumerate(settings.sentinel_ports, start=1):
            conf = _sentinel_conf(settings, port, primary)
            programs.append(
                Program(name=f"sentinel-{i}", argv=["redis-sentinel", str(conf)], priority=10)
            )
        return programs
    if settings.redis_mode == "cluster":
        programs = [
            _server(
                f"redis-{port}",
                settings,
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            )
            for port in settings.redis_ports
        ]
        programs.append(
            Program(
                name="redis-cluster-create",
                argv=[
                    str(settings.bin_dir / "python"),
                    "-m",
                    "deploy.local.redis_cluster_create",
                    *(f"{HOST}:{port}" for port in settings.redis_ports),
                ],
                priority=15,
                startsecs=0,
                autorestart=False,
            )
        )
        return programs
    return [_server("redis", settings, settings.redis_port)]


def gateway_redis_env(settings: FleetSettings) -> dict[str, str]:
    """The REDIS__* settings each gateway gets."""
    if settings.redis_mode == "sentinel":
        return {
            "REDIS__MODE": "sentinel",
            "REDIS__SENTINELS": ",".join(f"{HOST}:{p}" for p in settings.sentinel_ports),
            "REDIS__SENTINEL_SERVICE": SENTINEL_SERVICE,
        }
    if settings.redis_mode == "cluster":
        return {
            "REDIS__MODE": "cluster",
            "REDIS__CLUSTER_NODES": ",".join(f"{HOST}:{p}" for p in settings.redis_ports),
        }
    return {"REDIS__URL": settings.redis_url}


def _server(name: str, settings: FleetSettings, port: int, *extra: str) -> Program:
    data_dir = settings.run_dir / f"redis-{port}"
    if settings.redis_mode == "single":
        data_dir = settings.run_dir / "redis"  # where it always was
    data_dir.mkdir(parents=True, exist_ok=True)
    return Program(
        name=name,
        argv=[
            "redis-server",
            "--bind",
            HOST,
            "--port",
            str(port),
            "--save",
            "",
            # Finals survive a Redis crash: the AOF is written once a second (what
            # "persisted" means: README, "Nothing lost").
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(data_dir),
            "--protected-mode",
            "yes",
            *(() if settings.redis_mode == "single" else _REPLICATION),
            *extra,
        ],
        priority=10,
        startsecs=1,
    )


def _sentinel_conf(settings: FleetSettings, port: int, primary: int) -> Path:
    """Written afresh on every start (a sentinel rewrites its file as it learns)."""
    directory = settings.run_dir / f"sentinel-{port}"
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "sentinel.conf"
    conf.write_text(
        f"port {port}\n"
        f"bind {HOST}\n"
        f"dir {directory}\n"
        f"sentinel monitor {SENTINEL_SERVICE} {HOST} {primary} 2\n"
        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 2000\n"
        f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
        f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
    )
    return conf
