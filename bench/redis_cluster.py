"""A Redis Cluster for `make bench-redis` (mode `cluster:N`): N primaries (no replicas:
the bench measures what a shard's primary carries), every node pinned to the Redis core,
made into a cluster by `redis-cli --cluster create`."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.targets import pinned
from tests.support.processes import Proc, poll_until, start


def cluster_port() -> int:
    """A free port whose Cluster bus port (+10000) is free too."""
    while True:
        port = random.randint(20000, 45000)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 10000):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", p))
            except OSError:
                continue
        return port


@dataclass
class BenchCluster:
    procs: list[Proc]

    @property
    def ports(self) -> list[int]:
        return [p.port for p in self.procs]

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p.pid for p in self.procs)

    def info(self, section: str) -> list[dict[str, Any]]:
        out = []
        for port in self.ports:
            with redis.Redis(port=port, decode_responses=True) as node:
                out.append(node.info(section))
        return out


def summed_commandstats(infos: list[dict[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """One `INFO commandstats` as if the shards were one server."""
    total: dict[str, dict[str, int]] = {}
    for info in infos:
        for key, stats in info.items():
            entry = total.setdefault(key, {"calls": 0})
            entry["calls"] += int(stats.get("calls", 0))
    return dict(total)


@contextlib.contextmanager
def running_cluster(log_dir: Path, cores: str, shards: int) -> Iterator[BenchCluster]:
    procs: list[Proc] = []
    try:
        for _ in range(shards):
            port = cluster_port()
            data = log_dir / f"cluster-{port}"
            data.mkdir(parents=True, exist_ok=True)
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            argv += ["--appendonly", "no", "--dir", str(data), "--cluster-enabled", "yes"]
            argv += ["--cluster-config-file", "nodes.conf", "--protected-mode", "yes"]
            procs.append(start(f"redis-{port}", pinned(cores, argv), log_dir, port=port))
        if shards == 1:
            # redis-cli wants 3 primaries: one node takes every slot by itself.
            with redis.Redis(port=procs[0].port) as node:
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        else:
            nodes = [f"127.0.0.1:{p.port}" for p in procs]
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *nodes,
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
        cluster = BenchCluster(procs)
        poll_until(lambda: _cluster_ok(cluster.ports), 30, "the cluster to be ok")
        yield cluster
    finally:
        for proc in procs:
            proc.stop()


def _cluster_ok(ports: list[int]) -> bool:
    for port in ports:
        with redis.Redis(port=port, decode_responses=True) as node:
            if "cluster_state:ok" not in str(node.execute_command("CLUSTER", "INFO")):
                return False
    return True
