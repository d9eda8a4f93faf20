"""The local fleet's settings, supervisord configuration, preflight checks and reaper,
without starting the fleet."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from deploy.local import fleet, reaper
from deploy.local.nginx_conf import nginx_argv, render_nginx_conf
from deploy.local.prometheus_conf import render_prometheus_conf
from deploy.local.settings import REPO, FleetSettings
from deploy.local.supervisor_conf import fleet_programs, render_supervisor_conf

GATEWAY_COMMAND = (
    "{bin}/gunicorn -c services/gateway/gunicorn.conf.py --bind 127.0.0.1:{port} "
    "'gateway.main:create_app_from_env()'"
)


@pytest.fixture
def settings(tmp_path: Path) -> FleetSettings:
    return FleetSettings.from_env(
        {
            "FLEET_RUN_DIR": str(tmp_path / "fleet"),
            "FLEET_NGINX_PORT": "18080",
            "FLEET_GATEWAY_PORTS": "18001, 18002,18003",
            "FLEET_ASR_PORT": "15051",
            "FLEET_REDIS_PORT": "16380",
            "FLEET_ASR_METRICS_PORT": "19400",
            "FLEET_PROMETHEUS_PORT": "19090",
            "ASR_ENGINE": "synthetic",
        }
    )


@pytest.fixture
def supervisor_options(settings: FleetSettings) -> ServerOptions:
    """The rendered configuration as supervisord itself reads it."""
    nginx_dir = settings.run_dir / "nginx"
    conf = render_nginx_conf(settings.nginx_port, ["127.0.0.1:18001"], nginx_dir)
    prometheus = ["/usr/bin/prometheus", "--web.listen-address=127.0.0.1:19090"]
    programs = fleet_programs(settings, nginx_argv(conf, nginx_dir), prometheus)
    path = render_supervisor_conf(settings, programs)
    options = ServerOptions()
    options.realize(args=["-c", str(path)])
    return options


def test_defaults_are_the_ports_of_make_up() -> None:
    settings = FleetSettings.from_env({})
    assert settings.nginx_port == 8080
    assert settings.gateway_ports == (8001, 8002)
    assert settings.asr_port == 50051
    assert settings.redis_port == 6380
    assert settings.asr_metrics_port == 9400
    assert settings.prometheus_port == 9090
    assert settings.admin_ports == (8101, 8102)
    assert settings.asr_engine == "pocketsphinx"
    assert settings.run_dir == REPO / ".run" / "fleet"


def test_environment_overrides_every_port_and_the_engine(settings: FleetSettings) -> None:
    # The gateways' admin ports last: each gateway's port + 100 unless given.
    assert settings.all_ports() == [
        18080, 18001, 18002, 18003, 15051, 16380, 19400, 19090, 18101, 18102, 18103,
    ]  # fmt: skip
    assert settings.gateway_names == ["gateway-1", "gateway-2", "gateway-3"]
    assert settings.asr_engine == "synthetic"
    assert settings.redis_url == "redis://127.0.0.1:16380/0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLEET_NGINX_PORT": "http"}, "not a port"),
        ({"FLEET_REDIS_PORT": "70000"}, "not a port"),
        ({"FLEET_GATEWAY_PORTS": "8001,8001"}, "must differ"),
        ({"FLEET_NGINX_PORT": "6380"}, "must differ"),
        ({"FLEET_LOGS": "syslog"}, "FLEET_LOGS"),
        ({"FLEET_GATEWAY_ADMIN_PORTS": "9101"}, "one port per gateway"),
        ({"FLEET_GATEWAY_ADMIN_PORTS": "9101,8001"}, "must differ"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FleetSettings.from_env(env)


def test_every_program_restarts_and_stops_as_a_group(supervisor_options: ServerOptions) -> None:
    programs = {
        process.name: process
        for group in supervisor_options.process_group_configs
        for process in group.process_configs
    }
    assert set(programs) == {
        "reaper", "redis", "asr-cpu", "gateway-1", "gateway-2", "gateway-3", "prometheus",
        "nginx",
    }  # fmt: skip
    for name, process in programs.items():
        assert process.autorestart, name
        assert process.stopasgroup, name
        assert process.killasgroup, name
    start_order = sorted(programs, key=lambda name: programs[name].priority)
    assert start_order[0] == "reaper"
    assert start_order[-1] == "nginx"


def test_gateways_run_the_agreed_command_with_their_settings(
    supervisor_options: ServerOptions, settings: FleetSettings
) -> None:
    programs = {
        process.name: process
        for group in supervisor_options.process_group_configs
        for process in group.process_configs
    }
    for index, port in enumerate(settings.gateway_ports, start=1):
        gateway = programs[f"gateway-{index}"]
        assert gateway.command == GATEWAY_COMMAND.format(bin=settings.bin_dir, port=port)
        assert gateway.directory == str(REPO)
        assert gateway.environment["REDIS__URL"] == "redis://127.0.0.1:16380/0"
        assert gateway.environment["RIVA__TARGETS"] == "127.0.0.1:15051"
        assert gateway.environment["SERVER__POD_NAME"] == f"gateway-{index}"
        # Drain and /metrics on the master's admin listener, loopback only.
        assert gateway.environment["ADMIN__HOST"] == "127.0.0.1"
        assert gateway.environment["ADMIN__PORT"] == str(port + 100)
        assert gateway.environment["SERVER__DOCS_ENABLED"] == "true"
        # A development fleet: without it every gateway would refuse to start.
        assert gateway.environment["AUTH__REQUIRED"] == "false"
    assert programs["asr-cpu"].command.endswith(
        "-m asr_cpu --host 127.0.0.1 --port 15051 --engine synthetic --metrics-port 19400"
    )
    assert "--port 16380" in programs["redis"].command
    assert "--save ''" in programs["redis"].command
    assert "--appendonly yes --appendfsync everysec" in programs["redis"].command


def test_control_socket_is_in_the_run_dir_and_config_private(
    supervisor_options: ServerOptions, settings: FleetSettings
) -> None:
    assert supervisor_options.nodaemon
    assert supervisor_options.serverurl == f"unix://{settings.run_dir / 'supervisor.sock'}"
    mode = (settings.run_dir / "supervisord.conf").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_port_taken_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert fleet.port_taken(port)
    assert not fleet.port_taken(port)


def test_preflight_names_the_taken_port_and_its_program(settings: FleetSettings) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        taken = FleetSettings.from_env({"FLEET_RUN_DIR": str(settings.run_dir), **_ports(port)})
        with pytest.raises(fleet.FleetError, match=f"port {port} \\(gateway-2\\) is already"):
            fleet.preflight(taken)


def test_banner_says_what_runs_on_which_port(settings: FleetSettings) -> None:
    text = fleet.banner(settings)
    assert "ws://127.0.0.1:18080/api/v1/transcribe/{session_id}" in text
    for port in (
        "18001", "18002", "18003", "15051", "redis://127.0.0.1:16380/0",
        "http://127.0.0.1:19090", ":19400",
    ):  # fmt: skip
        assert port in text
    assert "supervisorctl -c" in text
    assert "Ctrl-C" in text


def test_reaper_kills_the_process_group_left_by_an_exited_program() -> None:
    # A stand-in for a gunicorn master's orphaned worker: a process in a group of its own.
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        payload = f"processname:gateway-1 groupname:gateway-1 expected:0 pid:{leftover.pid}\n"
        line = reaper.reap(payload)
        assert line is not None
        assert "gateway-1" in line
        assert leftover.wait(5) == -signal.SIGKILL
    finally:
        leftover.kill()
        leftover.wait(5)
    # Nothing left: nothing to say.
    assert reaper.reap(f"processname:x groupname:x pid:{leftover.pid}\n") is None


def _ports(gateway_2_port: int) -> dict[str, str]:
    # Every port but gateway-2's is one nobody uses (the preflight only binds, briefly).
    free = []
    for _ in range(8):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free.append(probe.getsockname()[1])
    return {
        "FLEET_NGINX_PORT": str(free[0]),
        "FLEET_GATEWAY_PORTS": f"{free[1]},{gateway_2_port}",
        "FLEET_ASR_PORT": str(free[2]),
        "FLEET_REDIS_PORT": str(free[3]),
        "FLEET_ASR_METRICS_PORT": str(free[4]),
        "FLEET_PROMETHEUS_PORT": str(free[5]),
        "FLEET_GATEWAY_ADMIN_PORTS": f"{free[6]},{free[7]}",
    }


def test_prometheus_scrapes_every_gateway_and_the_speech_server(
    settings: FleetSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixed ports of `settings` may be in use on a shared machine: no port check.
    monkeypatch.setattr(fleet, "preflight", lambda _: None)
    conf_path = fleet.prepare(settings)
    conf = json.loads((settings.run_dir / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in conf["scrape_configs"]}
    gateways = {c["labels"]["pod"]: c["targets"] for c in jobs["gateway"]["static_configs"]}
    # The gateways' metrics are on their admin ports.
    assert gateways == {
        "gateway-1": ["127.0.0.1:18101"],
        "gateway-2": ["127.0.0.1:18102"],
        "gateway-3": ["127.0.0.1:18103"],
    }
    assert jobs["speech-server"]["static_configs"][0]["targets"] == ["127.0.0.1:19400"]
    assert conf["rule_files"] == [str(REPO / "helm/speech-fleet/files/rules/*.yaml")]
    assert "--web.listen-address=127.0.0.1:19090" in conf_path.read_text()


def test_promtool_accepts_the_prometheus_configuration_and_its_rules(tmp_path: Path) -> None:
    path = render_prometheus_conf(
        tmp_path, gateways=[("gateway-1", "127.0.0.1:18001")], speech_servers=[]
    )
    result = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["sentinel", "cluster"])
def test_redis_modes_run_real_servers_and_tell_the_gateways(tmp_path: Path, mode: str) -> None:
    """REDIS_MODE=sentinel: a primary, its replica and three sentinels; REDIS_MODE=cluster:
    six cluster nodes and the one-shot that creates the cluster. The gateways get the
    matching REDIS__* settings; every port is checked before the start."""
    from deploy.local.redis_programs import gateway_redis_env, redis_programs

    settings = FleetSettings.from_env(
        {"FLEET_RUN_DIR": str(tmp_path / "fleet"), "FLEET_REDIS_PORT": "16380", "REDIS_MODE": mode}
    )
    programs = {p.name: p for p in redis_programs(settings)}
    env = gateway_redis_env(settings)
    if mode == "sentinel":
        assert sorted(programs) == [
            "redis",
            "redis-replica",
            "sentinel-1",
            "sentinel-2",
            "sentinel-3",
        ]
        assert programs["redis-replica"].argv[-3:] == ["--replicaof", "127.0.0.1", "16380"]
        conf = Path(programs["sentinel-1"].argv[1]).read_text()
        assert "sentinel monitor mymaster 127.0.0.1 16380 2" in conf
        assert env["REDIS__SENTINELS"] == "127.0.0.1:36380,127.0.0.1:36381,127.0.0.1:36382"
        assert {16380, 16381, 36380, 36381, 36382} <= set(settings.all_ports())
    else:
        nodes = [p for p in programs.values() if "--cluster-enabled" in p.argv]
        assert [p.argv[p.argv.index("--port") + 1] for p in nodes] == [
            str(port) for port in range(16380, 16386)
        ]
        create = programs["redis-cluster-create"]
        assert not create.autorestart
        assert create.argv[-6:] == [f"127.0.0.1:{port}" for port in range(16380, 16386)]
        assert env["REDIS__CLUSTER_NODES"].split(",")[0] == "127.0.0.1:16380"
        assert {26380, 26385} <= set(settings.all_ports())  # the cluster bus ports
    assert env["REDIS__MODE"] == mode
    with pytest.raises(ValueError, match="REDIS_MODE"):
        FleetSettings.from_env({"REDIS_MODE": "ring"})
