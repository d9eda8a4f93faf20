"""Command-line flags, each also settable from an ASR_* environment variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ENGINES = ("pocketsphinx", "synthetic")
# PocketSphinx holds the GIL while decoding (see engines/sphinx.py) and each stream
# borrows a 90 MB decoder: a handful of real-time streams is what one server can carry.
DEFAULT_MAX_STREAMS = {"pocketsphinx": 8, "synthetic": 2000}
DEFAULT_INTERIM_EVERY = {"pocketsphinx": 0.4, "synthetic": 0.2}


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    engine: str
    decode_workers: int
    max_streams: int
    interim_every_s: float
    final_every_s: float
    max_segment_s: float
    warm_decoders: int
    log_level: str
    idle_release_s: float = 0.0
    min_ping_interval_ms: int = 0
    metrics_port: int | None = None


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr-cpu",
        description="A CPU speech server speaking Riva's gRPC ASR API.",
    )

    def flag(name: str, *, default: object, help: str, **kwargs: Any) -> None:
        var = "ASR_" + name.upper().replace("-", "_")
        shown = "" if default is None else f", default {default}"
        parser.add_argument(
            f"--{name}", default=env.get(var, default), help=f"{help} [env {var}{shown}]", **kwargs
        )

    flag("host", default="127.0.0.1", help="address to listen on")
    flag("port", default=50051, type=int, help="port to listen on (0: any free port)")
    flag("engine", default="pocketsphinx", choices=ENGINES, help="recognition engine")
    flag(
        "decode-workers",
        default=os.cpu_count() or 1,
        type=_positive_int,
        help="threads that run decoding off the event loop",
    )
    flag(
        "max-streams",
        default=None,
        type=_positive_int,
        help="concurrent streams before RESOURCE_EXHAUSTED (default: 8 for pocketsphinx, "
        "2000 for synthetic)",
    )
    flag(
        "interim-every",
        default=None,
        type=_positive_float,
        help="seconds of audio between interim results (default: 0.4 pocketsphinx, 0.2 synthetic)",
    )
    flag(
        "final-every",
        default=2.0,
        type=_positive_float,
        help="synthetic engine: seconds of audio per final",
    )
    flag(
        "max-segment",
        default=20.0,
        type=_positive_float,
        help="pocketsphinx: longest segment in seconds before a forced endpoint",
    )
    flag(
        "warm-decoders",
        default=1,
        type=int,
        help="pocketsphinx: decoders created before serving",
    )
    flag(
        "idle-release",
        default=0.0,
        type=float,
        help="end a stream that gets no audio for this many seconds, as Riva does (0: never)",
    )
    flag(
        "min-ping-interval-ms",
        default=0,
        type=int,
        help="gRPC servers' ping policy: least time between client pings without data "
        "(0: gRPC's default, 5 minutes)",
    )
    flag("log-level", default="INFO", help="logging level")
    flag(
        "metrics-port",
        default=None,
        type=int,
        help="serve Prometheus metrics on this port (same host); off when unset",
    )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    args = build_parser(os.environ if env is None else env).parse_args(argv)
    # Defaults from the environment arrive as strings and bypass `type`/`choices`.
    engine = str(args.engine)
    if engine not in ENGINES:
        raise SystemExit(f"asr-cpu: unknown engine {engine!r} (choose from {ENGINES})")
    max_streams = args.max_streams
    interim = args.interim_every
    return Settings(
        host=str(args.host),
        port=int(args.port),
        engine=engine,
        decode_workers=_positive_int(str(args.decode_workers)),
        max_streams=(
            _positive_int(str(max_streams))
            if max_streams is not None
            else DEFAULT_MAX_STREAMS[engine]
        ),
        interim_every_s=(
            _positive_float(str(interim)) if interim is not None else DEFAULT_INTERIM_EVERY[engine]
        ),
        final_every_s=_positive_float(str(args.final_every)),
        max_segment_s=_positive_float(str(args.max_segment)),
        warm_decoders=int(args.warm_decoders),
        log_level=str(args.log_level).upper(),
        idle_release_s=max(0.0, float(args.idle_release)),
        min_ping_interval_ms=max(0, int(args.min_ping_interval_ms)),
        metrics_port=int(args.metrics_port) if args.metrics_port is not None else None,
    )
