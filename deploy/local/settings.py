"""What the local fleet runs where: ports, engine and run dir, read from the environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
REDIS_MODES = ("single", "sentinel", "cluster")
FRONT_LIMITS = ("loopback", "production")


@dataclass(frozen=True)
class FleetSettings:
    nginx_port: int = 8080
    gateway_ports: tuple[int, ...] = (8001, 8002)
    asr_port: int = 50051
    redis_port: int = 6380
    asr_metrics_port: int = 9400
    prometheus_port: int = 9090
    asr_engine: str = "pocketsphinx"
    # "terminal": every program's output in the foreground; "files": one log file each.
    logs: str = "terminal"
    run_dir: Path = REPO / ".run" / "fleet"
    repo: Path = REPO
    # The virtualenv's bin directory: python, gunicorn, supervisord.
    bin_dir: Path = Path(sys.executable).parent
    # "single", "sentinel" or "cluster" (deploy/local/redis_programs.py).
    redis_mode: str = "single"
    # The gateways' SERVER__ALLOWED_ORIGINS; empty: the fleet's own page (`own_origins`).
    allowed_origins: str = ""
    # NGINX's per-address limits: "loopback" (high: every local client is 127.0.0.1) or
    # "production" (the chart's protective defaults), deploy/local/front_limits.py.
    front_limits: str = "loopback"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FleetSettings:
        """Read FLEET_NGINX_PORT, FLEET_GATEWAY_PORTS (comma list), FLEET_ASR_PORT,
        FLEET_REDIS_PORT, FLEET_ASR_METRICS_PORT, FLEET_PROMETHEUS_PORT, ASR_ENGINE,
        FLEET_LOGS, FLEET_RUN_DIR, FLEET_FRONT_LIMITS and SERVER__ALLOWED_ORIGINS;
        defaults otherwise."""
        env = os.environ if env is None else env
        defaults = cls()
        gateway_ports = env.get("FLEET_GATEWAY_PORTS", "")
        run_dir = env.get("FLEET_RUN_DIR", "")
        settings = cls(
            nginx_port=_port(env, "FLEET_NGINX_PORT", defaults.nginx_port),
            gateway_ports=(
                tuple(_parse_port("FLEET_GATEWAY_PORTS", p) for p in gateway_ports.split(","))
                if gateway_ports.strip()
                else defaults.gateway_ports
            ),
            asr_port=_port(env, "FLEET_ASR_PORT", defaults.asr_port),
            redis_port=_port(env, "FLEET_REDIS_PORT", defaults.redis_port),
            asr_metrics_port=_port(env, "FLEET_ASR_METRICS_PORT", defaults.asr_metrics_port),
            prometheus_port=_port(env, "FLEET_PROMETHEUS_PORT", defaults.prometheus_port),
            asr_engine=env.get("ASR_ENGINE") or defaults.asr_engine,
            logs=env.get("FLEET_LOGS") or defaults.logs,
            run_dir=Path(run_dir).resolve() if run_dir else defaults.run_dir,
            redis_mode=env.get("REDIS_MODE") or defaults.redis_mode,
            allowed_origins=env.get("SERVER__ALLOWED_ORIGINS", "").strip(),
            front_limits=env.get("FLEET_FRONT_LIMITS") or defaults.front_limits,
        )
        if settings.front_limits not in FRONT_LIMITS:
            raise ValueError(
                f"FLEET_FRONT_LIMITS must be one of {FRONT_LIMITS}, not {settings.front_limits!r}"
            )
        if settings.redis_mode not in REDIS_MODES:
            raise ValueError(
                f"REDIS_MODE must be one of {REDIS_MODES}, not {settings.redis_mode!r}"
            )
        if settings.redis_mode == "cluster" and settings.redis_ports[-1] > 55535:
            raise ValueError("REDIS_MODE=cluster: FLEET_REDIS_PORT + 5 must be at most 55535")
        if settings.logs not in ("terminal", "files"):
            raise ValueError(f"FLEET_LOGS must be 'terminal' or 'files', not {settings.logs!r}")
        if len(set(settings.all_ports())) != len(settings.all_ports()):
            raise ValueError(f"the fleet's ports must differ: {settings.all_ports()}")
        return settings

    @property
    def own_origins(self) -> str:
        """The origins of the fleet's own page, as a browser on this machine names it."""
        return f"http://{HOST}:{self.nginx_port},http://localhost:{self.nginx_port}"

    @property
    def gateway_allowed_origins(self) -> str:
        return self.allowed_origins or self.own_origins

    @property
    def gateway_names(self) -> list[str]:
        return [f"gateway-{i}" for i in range(1, len(self.gateway_ports) + 1)]

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def redis_ports(self) -> tuple[int, ...]:
        """The Redis servers' ports: one, a primary and its replica, or six cluster nodes."""
        count = {"sentinel": 2, "cluster": 6}.get(self.redis_mode, 1)
        return tuple(range(self.redis_port, self.redis_port + count))

    @property
    def sentinel_ports(self) -> tuple[int, ...]:
        """Three sentinels at 20000 above the Redis port (26380-26382), in sentinel mode."""
        if self.redis_mode != "sentinel":
            return ()
        return tuple(range(self.redis_port + 20000, self.redis_port + 20003))

    def redis_ports_named(self) -> list[tuple[str, int]]:
        names = [(f"Redis {p}", p) for p in self.redis_ports]
        names += [(f"sentinel {p}", p) for p in self.sentinel_ports]
        names += [(f"cluster bus {p + 10000}", p + 10000) for p in self.cluster_bus_ports]
        return names

    @property
    def cluster_bus_ports(self) -> tuple[int, ...]:
        return self.redis_ports if self.redis_mode == "cluster" else ()

    def all_ports(self) -> list[int]:
        extra = [port for _, port in self.redis_ports_named()[1:]]
        return [
            self.nginx_port,
            *self.gateway_ports,
            self.asr_port,
            self.redis_port,
            self.asr_metrics_port,
            self.prometheus_port,
            *extra,
        ]


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    return _parse_port(name, value) if value else default


def _parse_port(name: str, value: str) -> int:
    try:
        port = int(value.strip())
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name}: {port} is not a port number")
    return port
