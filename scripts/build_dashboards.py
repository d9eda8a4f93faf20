"""Writes the Grafana dashboards (plain JSON) into helm/speech-fleet/files/dashboards/.

    .venv/bin/python scripts/build_dashboards.py

The JSON files are the one copy that the Helm chart, Compose and the local fleet read;
this script is how they are written (a test checks that they match it). Every query uses
only metrics the gateway and the speech server export, with the `namespace` and `pod`
template variables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "helm" / "speech-fleet" / "files" / "dashboards"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GW = 'namespace=~"$namespace", pod=~"$pod"'
RATE = "$__rate_interval"


def q(expr: str, legend: str = "") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend or "__auto"}


class Board:
    """Lays panels out left to right, rows of 24 columns."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = 0
        self._row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
            self._x = self._row_height = 0

    def panel(
        self,
        title: str,
        targets: list[dict[str, Any]],
        *,
        unit: str = "short",
        kind: str = "timeseries",
        width: int = 8,
        height: int = 8,
        description: str = "",
        stack: bool = False,
        max_value: float | None = None,
    ) -> None:
        if self._x + width > 24:
            self._newline()
        defaults: dict[str, Any] = {"unit": unit}
        if max_value is not None:
            defaults["max"] = max_value
        if kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            }
            options: dict[str, Any] = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        else:  # stat
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "textMode": "auto",
            }
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": kind,
                "title": title,
                "description": description,
                "datasource": DATASOURCE,
                "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y},
                "targets": [
                    {**t, "refId": chr(ord("A") + i), "datasource": DATASOURCE}
                    for i, t in enumerate(targets)
                ],
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": options,
            }
        )
        self._x += width
        self._row_height = max(self._row_height, height)


def variables(metric: str) -> list[dict[str, Any]]:
    def query_var(name: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": name,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": query, "refId": f"{name}-var"},
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "options": [],
        }

    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "options": [],
            "refresh": 1,
        },
        query_var("namespace", f"label_values({metric}, namespace)"),
        query_var("pod", f'label_values({metric}{{namespace=~"$namespace"}}, pod)'),
    ]


def dashboard(uid: str, title: str, description: str, board: Board, metric: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["speech-fleet"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [],
        "annotations": {"list": []},
        "templating": {"list": variables(metric)},
        "panels": board.panels,
    }


def fleet_overview() -> dict[str, Any]:
    b = Board()
    b.row("Traffic (rate)")
    b.panel(
        "Active sessions",
        [q(f"sum by (pod) (gateway_sessions_active{{{GW}}})", "{{pod}}")],
        stack=True,
    )
    b.panel(
        "Session starts, resumes and takeovers",
        [
            q(f"sum(rate(gateway_sessions_started_total{{{GW}}}[{RATE}]))", "started"),
            q(f"sum(rate(gateway_sessions_resumed_total{{{GW}}}[{RATE}]))", "resumed"),
            q(f"sum(rate(gateway_sessions_taken_over_total{{{GW}}}[{RATE}]))", "taken over"),
        ],
        unit="ops",
    )
    b.panel(
        "Audio received (seconds of audio per second)",
        [
            q(
                f"sum by (pod) (rate(gateway_audio_received_seconds_total{{{GW}}}[{RATE}]))",
                "{{pod}}",
            )
        ],
        description="About the number of sessions streaming in real time.",
        stack=True,
    )
    b.panel(
        "WebSocket messages",
        [
            q(f"sum(rate(gateway_ws_received_messages_total{{{GW}}}[{RATE}]))", "in"),
            q(f"sum(rate(gateway_ws_sent_messages_total{{{GW}}}[{RATE}]))", "out"),
        ],
        unit="ops",
        width=12,
    )
    b.panel(
        "WebSocket bytes",
        [
            q(f"sum(rate(gateway_ws_received_bytes_total{{{GW}}}[{RATE}]))", "in"),
            q(f"sum(rate(gateway_ws_sent_bytes_total{{{GW}}}[{RATE}]))", "out"),
        ],
        unit="Bps",
        width=12,
    )
    b.row("Errors")
    b.panel(
        "Server-side error ratio (SLO 99.9 %)",
        [
            q(
                "sum(rate(gateway_sessions_ended_total{"
                + GW
                + ', outcome=~"internal_error|backend_unavailable|backend_error"}['
                + RATE
                + "])) / sum(rate(gateway_sessions_ended_total{"
                + GW
                + "}["
                + RATE
                + "]))",
                "error ratio",
            )
        ],
        unit="percentunit",
        description="Share of ended connections with a server-side error; budget 0.1 %.",
    )
    b.panel(
        "Connections ended, by outcome",
        [
            q(
                f"sum by (outcome) (rate(gateway_sessions_ended_total{{{GW}}}[{RATE}]))",
                "{{outcome}}",
            )
        ],
        unit="ops",
        stack=True,
    )
    b.panel(
        "Errors sent, by code",
        [q(f"sum by (code) (rate(gateway_session_errors_total{{{GW}}}[{RATE}]))", "{{code}}")],
        unit="ops",
        stack=True,
    )
    b.panel(
        "Rejections, by reason",
        [
            q(
                f"sum by (reason) (rate(gateway_sessions_rejected_total{{{GW}}}[{RATE}]))",
                "{{reason}}",
            )
        ],
        unit="ops",
        stack=True,
        width=12,
    )
    b.panel(
        "Finals sent",
        [q(f"sum(rate(gateway_finals_total{{{GW}}}[{RATE}]))", "finals")],
        unit="ops",
        width=12,
    )
    b.row("Latency")
    for title, metric, desc in (
        (
            "Final latency",
            "gateway_final_latency_seconds",
            "From the audio that ends an utterance to its final at the client. SLO: 99 % "
            "within 1 s.",
        ),
        (
            "First transcript latency",
            "gateway_first_interim_latency_seconds",
            "From a connection's start to its first transcript.",
        ),
    ):
        b.panel(
            title,
            [
                q(
                    f"histogram_quantile({p}, sum by (le) (rate({metric}_bucket{{{GW}}}[{RATE}])))",
                    f"p{int(p * 100)}",
                )
                for p in (0.5, 0.95, 0.99)
            ],
            unit="s",
            description=desc,
        )
    b.panel(
        "Gateway's own added latency (p99)",
        [
            q(
                "histogram_quantile(0.99, sum by (le, kind) "
                f"(rate(gateway_added_latency_seconds_bucket{{{GW}}}[{RATE}])))",
                "{{kind}}",
            )
        ],
        unit="s",
        description="Backend response in to client send out; finals include their Redis write.",
    )
    b.row("Saturation (per pod)")
    b.panel(
        "Capacity used",
        [
            q(
                f"sum by (pod) (gateway_sessions_active{{{GW}}}) / "
                f"sum by (pod) (gateway_sessions_capacity{{{GW}}})",
                "{{pod}}",
            )
        ],
        unit="percentunit",
        max_value=1,
    )
    b.panel(
        "Event-loop lag",
        [q(f"max by (pod) (gateway_event_loop_lag_seconds{{{GW}}})", "{{pod}}")],
        unit="s",
        description="How late the housekeeping tick wakes up: what admission control reads.",
    )
    b.panel(
        "Draining pods and worker restarts",
        [
            q(f"sum(max by (pod) (gateway_draining{{{GW}}}))", "draining pods"),
            q(f"sum(increase(gateway_worker_starts_total{{{GW}}}[1h]))", "worker starts (1 h)"),
        ],
    )
    b.row("Speech backend")
    b.panel(
        "Streams by endpoint",
        [q(f"sum by (endpoint) (gateway_backend_streams{{{GW}}})", "{{endpoint}}")],
        stack=True,
    )
    b.panel(
        "Endpoints up (health check) and healthy (balancer)",
        [
            q(f"max by (endpoint) (gateway_backend_endpoint_up{{{GW}}})", "up {{endpoint}}"),
            q(
                f"min by (endpoint) (gateway_backend_endpoint_healthy{{{GW}}})",
                "healthy {{endpoint}}",
            ),
        ],
        max_value=1,
    )
    b.panel(
        "Stream errors and failovers",
        [
            q(
                f"sum by (code) (rate(gateway_backend_stream_errors_total{{{GW}}}[{RATE}]))",
                "{{code}}",
            ),
            q(f"sum(rate(gateway_backend_failovers_total{{{GW}}}[{RATE}]))", "failovers"),
        ],
        unit="ops",
    )
    b.row("Redis")
    b.panel(
        "Operation latency (p99)",
        [
            q(
                "histogram_quantile(0.99, sum by (le, op) "
                f"(rate(gateway_redis_op_duration_seconds_bucket{{{GW}}}[{RATE}])))",
                "{{op}}",
            )
        ],
        unit="s",
    )
    b.panel(
        "Errors by kind",
        [q(f"sum by (kind) (rate(gateway_redis_errors_total{{{GW}}}[{RATE}]))", "{{kind}}")],
        unit="ops",
        stack=True,
    )
    b.panel(
        "Finals not yet persisted",
        [q(f"sum by (pod) (gateway_redis_pending_finals{{{GW}}})", "{{pod}}")],
        description="Sent to clients while Redis was unreachable; written when it is back.",
    )
    return dashboard(
        "speech-fleet-overview",
        "Speech fleet: overview",
        "Gateways: traffic, errors, latency, saturation, speech backend and Redis.",
        b,
        "gateway_sessions_active",
    )


def speech_backends() -> dict[str, Any]:
    b = Board()
    asr = GW
    b.row("Speech servers")
    b.panel(
        "Active streams and limit",
        [
            q(f"sum by (pod) (asr_streams_active{{{asr}}})", "{{pod}} active"),
            q(f"sum by (pod) (asr_streams_limit{{{asr}}})", "{{pod}} limit"),
        ],
    )
    b.panel(
        "Audio decoded (seconds of audio per second)",
        [q(f"sum by (pod) (rate(asr_audio_seconds_total{{{asr}}}[{RATE}]))", "{{pod}}")],
        stack=True,
    )
    b.panel(
        "Decoding real-time factor",
        [
            q(
                f"histogram_quantile({p}, sum by (le) "
                f"(rate(asr_decode_real_time_factor_bucket{{{asr}}}[{RATE}])))",
                f"p{int(p * 100)}",
            )
            for p in (0.5, 0.95)
        ]
        + [
            q(
                f"sum(rate(asr_decode_seconds_total{{{asr}}}[{RATE}])) / "
                f"sum(rate(asr_audio_seconds_total{{{asr}}}[{RATE}]))",
                "overall",
            )
        ],
        description="Seconds of decoding per second of audio; above 1 the server falls behind.",
    )
    b.panel(
        "Streams ended, by outcome",
        [q(f"sum by (outcome) (rate(asr_streams_total{{{asr}}}[{RATE}]))", "{{outcome}}")],
        unit="ops",
        stack=True,
        width=12,
    )
    b.panel(
        "Errors, by gRPC code",
        [q(f"sum by (code) (rate(asr_errors_total{{{asr}}}[{RATE}]))", "{{code}}")],
        unit="ops",
        stack=True,
        width=12,
    )
    b.row("As the gateways see them")
    b.panel(
        "Gateway streams by endpoint",
        [q('sum by (endpoint) (gateway_backend_streams{namespace=~"$namespace"})', "{{endpoint}}")],
        width=12,
    )
    b.panel(
        "Endpoints answering their health check",
        [
            q(
                'max by (endpoint) (gateway_backend_endpoint_up{namespace=~"$namespace"})',
                "{{endpoint}}",
            )
        ],
        width=12,
        max_value=1,
    )
    return dashboard(
        "speech-fleet-backends",
        "Speech fleet: speech backends",
        "The speech servers' own metrics, and the gateways' view of them.",
        b,
        "asr_streams_active",
    )


DASHBOARDS = {"fleet-overview.json": fleet_overview, "speech-backends.json": speech_backends}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
