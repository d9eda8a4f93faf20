"""Real replicated Redis for tests: a primary, a replica and three sentinels; or a Cluster
of three primaries with a replica each. All on free ports of 127.0.0.1, each process
stopped by the context manager that started it.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.processes import Proc, free_port, poll_until, redis_argv, running

SERVICE = "mymaster"


def _server_argv(port: int, data_dir: Path, *extra: str) -> list[str]:
    return [
        *redis_argv(port, data_dir),
        # A replica that comes back syncs at once (Redis 7 waits 5 s for more replicas).
        "--repl-diskless-sync-delay",
        "0",
        *extra,
    ]


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, decode_responses=True)


@dataclass
class SentinelSetup:
    servers: dict[int, Proc]  # by port
    sentinels: list[Proc]
    data_dir: Path
    log_dir: Path
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def gateway_env(self) -> dict[str, str]:
        return {
            "REDIS__MODE": "sentinel",
            "REDIS__SENTINELS": self.sentinel_addresses,
            "REDIS__SENTINEL_SERVICE": SERVICE,
        }

    def primary_port(self) -> int:
        with _client(self.sentinels[0].port) as s:
            _, port = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def wait_until_settled(self, timeout: float = 30.0) -> int:
        """Every sentinel names one primary that says it is one, with a replica
        connected; returns its port."""

        def settled() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                with _client(sentinel.port) as s:
                    ports.add(
                        int(s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])
                    )
            if len(ports) != 1:
                return False
            with _client(ports.pop()) as primary:
                info = primary.info("replication")
                return bool(
                    info["role"] == "master"
                    and info["connected_slaves"] >= 1
                    and info["slave0"]["state"] == "online"
                )

        poll_until(settled, timeout, "the sentinels to agree on a primary with a replica")
        return self.primary_port()

    def restart(self, port: int) -> None:
        """Start a killed server again (as a replica of the current primary)."""
        primary = self.primary_port()
        self.servers[port] = self.stack.enter_context(
            running(
                f"redis-{port}",
                _server_argv(
                    port, self.data_dir / str(port), "--replicaof", "127.0.0.1", str(primary)
                ),
                self.log_dir,
                port=port,
            )
        )


@contextlib.contextmanager
def sentinel_setup(log_dir: Path) -> Iterator[SentinelSetup]:
    """A primary, a replica and three sentinels (quorum 2, a primary is down after 1 s)."""
    data_dir = log_dir / "sentinel-setup"
    with contextlib.ExitStack() as stack:
        primary, replica = free_port(), free_port()
        servers = {
            primary: stack.enter_context(
                running(
                    f"redis-{primary}",
                    _server_argv(primary, data_dir / str(primary)),
                    log_dir,
                    port=primary,
                )
            ),
            replica: stack.enter_context(
                running(
                    f"redis-{replica}",
                    _server_argv(
                        replica, data_dir / str(replica), "--replicaof", "127.0.0.1", str(primary)
                    ),
                    log_dir,
                    port=replica,
                )
            ),
        }
        sentinels = []
        for _ in range(3):
            port = free_port()
            conf = data_dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                f"dir {data_dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            sentinels.append(
                stack.enter_context(
                    running(f"sentinel-{port}", ["redis-sentinel", str(conf)], log_dir, port=port)
                )
            )
        setup = SentinelSetup(servers, sentinels, data_dir, log_dir, stack)
        setup.wait_until_settled()
        yield setup


@dataclass
class ClusterSetup:
    nodes: dict[int, Proc]  # by port
    data_dir: Path
    log_dir: Path
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def seeds(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.nodes)

    def gateway_env(self) -> dict[str, str]:
        return {"REDIS__MODE": "cluster", "REDIS__CLUSTER_NODES": self.seeds}

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(
            host="127.0.0.1", port=next(iter(self.nodes)), decode_responses=True
        )

    def primary_of(self, key: str) -> int:
        """The port of the live primary that holds `key`'s slot."""
        live = [port for port, proc in self.nodes.items() if proc.alive()]
        with _client(live[0]) as any_node:
            slot = int(any_node.cluster("KEYSLOT", key))
        for port in live:
            with _client(port) as node:
                if node.info("replication")["role"] == "master" and _owns(node, slot):
                    return port
        raise LookupError(f"no live primary holds slot {slot}")

    def is_primary(self, port: int) -> bool:
        if not self.nodes[port].alive():
            return False
        with _client(port) as node:
            return bool(node.info("replication")["role"] == "master")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every live node sees the cluster ok, and every primary has a replica online
        (what `WAIT 1` needs)."""

        def healthy() -> bool:
            for port, proc in self.nodes.items():
                if not proc.alive():
                    continue
                with _client(port) as node:
                    info = node.execute_command("CLUSTER", "INFO")
                    if "cluster_state:ok" not in str(info):
                        return False
                    replication = node.info("replication")
                    if replication["role"] == "master" and not any(
                        isinstance(v, dict) and v.get("state") == "online"
                        for k, v in replication.items()
                        if k.startswith("slave")
                    ):
                        return False
            return True

        poll_until(healthy, timeout, "the cluster to be ok")

    def restart(self, port: int) -> None:
        self.nodes[port] = self.stack.enter_context(
            running(f"redis-{port}", _cluster_argv(port, self.data_dir), self.log_dir, port=port)
        )


def _owns(node: redis.Redis, slot: int) -> bool:
    myself = node.execute_command("CLUSTER", "MYID")
    for entry in node.execute_command("CLUSTER", "SLOTS"):
        start, end, primary = int(entry[0]), int(entry[1]), entry[2]
        if start <= slot <= end:
            return bool(primary[2] == myself)
    return False


def cluster_port() -> int:
    """A free port whose Cluster bus port (+10000) is free too, so at most 55535."""
    while True:
        port = random.randint(20000, 45000)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 10000):
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", p))
            except OSError:
                continue
        return port


def _cluster_argv(port: int, data_dir: Path) -> list[str]:
    return _server_argv(
        port,
        data_dir / str(port),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        f"nodes-{port}.conf",
        "--cluster-node-timeout",
        "1000",
        "--repl-diskless-load",
        "disabled",
    )


@contextlib.contextmanager
def cluster_setup(log_dir: Path) -> Iterator[ClusterSetup]:
    """Three primaries and three replicas, created by `redis-cli --cluster create`."""
    data_dir = log_dir / "cluster-setup"
    with contextlib.ExitStack() as stack:
        ports = [cluster_port() for _ in range(6)]
        nodes = {
            port: stack.enter_context(
                running(f"redis-{port}", _cluster_argv(port, data_dir), log_dir, port=port)
            )
            for port in ports
        }
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        setup = ClusterSetup(nodes, data_dir, log_dir, stack)
        setup.wait_healthy()
        yield setup


def node_id(port: int) -> str:
    with _client(port) as node:
        return str(node.execute_command("CLUSTER", "MYID"))


def first_slot_of(port: int) -> int:
    """The lowest slot the primary on `port` serves (what a reshard moves first)."""
    myself = node_id(port)
    with _client(port) as node:
        starts = [int(e[0]) for e in node.execute_command("CLUSTER", "SLOTS") if e[2][2] == myself]
    return min(starts)


def reshard(from_port: int, to_port: int, slots: int = 1) -> None:
    """`redis-cli --cluster reshard`: move `slots` slots (the source's lowest first)."""
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "reshard",
            f"127.0.0.1:{from_port}",
            "--cluster-from",
            node_id(from_port),
            "--cluster-to",
            node_id(to_port),
            "--cluster-slots",
            str(slots),
            "--cluster-yes",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
