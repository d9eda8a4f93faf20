"""A stand-in for Grafana (none can run here): draws a dashboard's panels with matplotlib,
each from the panel's own queries, evaluated by Prometheus's query_range API.

    .venv/bin/python scripts/plot_panels_from_prometheus.py \\
        --prometheus http://127.0.0.1:9090 --minutes 10 \\
        --panels "Active sessions" "Final latency" --out docs/img/fleet-overview.png

Template variables are set to "all" ($namespace, $pod = .*); $__rate_interval is 1m.
Series that stay at zero (error codes that never happened) are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DASHBOARD = REPO / "helm/speech-fleet/files/dashboards/fleet-overview.json"
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$namespace": ".*", "$pod": ".*"}
UNIT_SCALE = {"s": (1000.0, "ms"), "percentunit": (100.0, "%")}


def concrete(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def query_range(base: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as resp:
        body = json.load(resp)
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    result: list[Any] = body["data"]["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    if template in ("", "__auto"):
        return ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def draw(args: argparse.Namespace) -> Path:
    board = json.loads(Path(args.dashboard).read_text())
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row"}
    titles = args.panels or list(panels)
    missing = [t for t in titles if t not in panels]
    if missing:
        raise SystemExit(f"no such panels: {missing}; there are: {list(panels)}")
    end = time.time()
    start = end - args.minutes * 60
    columns = 2
    rows = (len(titles) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 3.2 * rows), squeeze=False)
    for ax, title in zip(axes.flat, titles, strict=False):
        panel = panels[title]
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        scale, shown = UNIT_SCALE.get(unit, (1.0, "" if unit == "short" else unit))
        for target in panel["targets"]:
            for series in query_range(
                args.prometheus, concrete(target["expr"]), start, end, args.step
            ):
                points = [
                    (float(t), float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf")
                ]
                # Series at zero all along (error codes that never happened) only clutter.
                if not any(v for _, v in points):
                    continue
                ax.plot(
                    [datetime.fromtimestamp(t, UTC) for t, _ in points],
                    [v * scale for _, v in points],
                    label=legend(target.get("legendFormat", ""), series["metric"]),
                    linewidth=1.2,
                )
        ax.set_title(title, fontsize=10)
        if shown:
            ax.set_ylabel(shown)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(titles) :]:
        ax.axis("off")
    fig.suptitle(
        f"{board['title']} — drawn by {Path(__file__).name} from Prometheus (no Grafana)",
        fontsize=11,
    )
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--dashboard", default=str(DEFAULT_DASHBOARD))
    parser.add_argument("--panels", nargs="*", help="panel titles (default: all)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how far back")
    parser.add_argument("--step", type=float, default=5.0, help="seconds between points")
    parser.add_argument("--out", default=str(REPO / "docs/img/fleet-overview.png"))
    print(f"wrote {draw(parser.parse_args(argv))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
