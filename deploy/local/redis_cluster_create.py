"""`python -m deploy.local.redis_cluster_create HOST:PORT ...`: the fleet's one-shot program
that makes six empty cluster nodes into a Redis Cluster of three primaries with a replica
each (`redis-cli --cluster create`), once every node answers. Nodes that already form a
cluster (a restart of the fleet: each node keeps its `nodes.conf`) are left as they are.
"""

from __future__ import annotations

import subprocess
import sys
import time

# The nodes start with it; bounded so that a node that never comes up is reported.
_WAIT_S = 60.0


def _cli(address: str, *args: str) -> str:
    host, _, port = address.rpartition(":")
    result = subprocess.run(
        ["redis-cli", "-h", host, "-p", port, *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return result.stdout


def _known_nodes(address: str) -> int:
    for line in _cli(address, "CLUSTER", "INFO").splitlines():
        if line.startswith("cluster_known_nodes:"):
            return int(line.split(":", 1)[1])
    return 0


def main(addresses: list[str]) -> int:
    deadline = time.monotonic() + _WAIT_S
    while True:
        try:
            known = [_known_nodes(a) for a in addresses]
            break
        except (subprocess.SubprocessError, OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                print(f"redis-cluster-create: nodes not answering: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    if any(count > 1 for count in known):
        print("redis-cluster-create: the nodes already form a cluster", flush=True)
        return 0
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *addresses,
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        ],
        check=True,
        timeout=120,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
