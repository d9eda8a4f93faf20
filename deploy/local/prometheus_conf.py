"""Renders a Prometheus configuration that scrapes the gateways and speech servers and
loads the fleet's alert rules, and the command line that runs Debian's `prometheus`.

Used by the local fleet and by the tests that run a real Prometheus.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The one copy of the rules; the Helm chart reads the same files.
RULE_FILES = REPO / "helm" / "speech-fleet" / "files" / "rules" / "*.yaml"

# (pod name, "host:port") of each target.
Target = tuple[str, str]


def render_prometheus_conf(
    run_dir: Path,
    *,
    gateways: Sequence[Target],
    speech_servers: Sequence[Target],
    scrape_interval_s: float = 5.0,
    namespace: str = "local",
) -> Path:
    """Write `run_dir/prometheus.yml`; every target carries `namespace` and `pod` labels,
    as Kubernetes service discovery gives them in a cluster."""
    run_dir.mkdir(parents=True, exist_ok=True)
    interval = f"{int(scrape_interval_s * 1000)}ms"

    def job(name: str, targets: Sequence[Target]) -> dict[str, object]:
        return {
            "job_name": name,
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "static_configs": [
                {"targets": [address], "labels": {"namespace": namespace, "pod": pod}}
                for pod, address in targets
            ],
        }

    conf = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULE_FILES)],
        "scrape_configs": [job("gateway", gateways), job("speech-server", speech_servers)],
    }
    path = run_dir / "prometheus.yml"
    # JSON is YAML: no YAML library needed to write it.
    path.write_text(json.dumps(conf, indent=2) + "\n")
    return path


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError("prometheus not found: run `make install`")
    return found


def prometheus_argv(conf: Path, data_dir: Path, listen: str) -> list[str]:
    """Prometheus on `listen` ("127.0.0.1:9090"), its data in `data_dir`."""
    return [
        prometheus_binary(),
        f"--config.file={conf}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={listen}",
    ]
