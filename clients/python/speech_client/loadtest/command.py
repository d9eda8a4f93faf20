"""`speech-client loadtest`: N concurrent sessions against a fleet, then a report.

Exit codes: 0 every session ok, 1 some session failed (or the audio could not be read),
2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from typing import Any, TextIO, cast

from speech_client.audio import DEFAULT_FRAME_MS, ENCODINGS, AudioError, AudioFormat
from speech_client.client import ClientOptions
from speech_client.config import TranscriptionConfig
from speech_client.loadtest.report import build_report, format_table
from speech_client.loadtest.runner import LoadTestOptions, run_load_test
from speech_client.loadtest.sources import GENERATED, load_plans
from speech_client.urls import DEFAULT_URL, TRANSCRIBE_PATH, session_url

PROG = "speech-client loadtest"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _base_url(text: str) -> str:
    """A base URL: each session appends its own `/api/v1/transcribe/{id}`."""
    if TRANSCRIBE_PATH in text:
        raise argparse.ArgumentTypeError("give the base URL (each session gets its own id)")
    try:
        session_url(text, "x" * 8)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _config_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of TranscriptionConfig fields")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "loadtest",
        help="run concurrent sessions against a fleet and report latencies",
        description="Stream N concurrent sessions at real-time pace and report sessions,"
        " finals, latency percentiles, resumes and close/error codes.",
    )
    p.add_argument(
        "--url",
        type=_base_url,
        default=os.environ.get("SPEECH_URL", DEFAULT_URL),
        help="gateway base URL (default: $SPEECH_URL or %(default)s)",
    )
    p.add_argument(
        "--token", default=os.environ.get("SPEECH_TOKEN"), help="(default: $SPEECH_TOKEN)"
    )
    p.add_argument("--sessions", type=_positive_int, required=True, metavar="N")
    p.add_argument(
        "--ramp-up",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="start sessions evenly over",
    )
    p.add_argument(
        "--duration",
        type=_positive_seconds,
        metavar="SECONDS",
        help="audio per session, files looped as needed (default: each file once;"
        " generated audio 30 s)",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--audio", nargs="+", default=[], metavar="FILE", help="WAV or raw files, cycled"
    )
    source.add_argument(
        "--generate",
        choices=GENERATED,
        help="generated pcm16 audio (the default: noise, which the synthetic engine turns"
        " into words)",
    )
    p.add_argument("--speed", type=_seconds, default=1.0, help="multiple of real time; 0 = unpaced")
    p.add_argument("--frame-ms", type=_positive_int, default=DEFAULT_FRAME_MS)
    p.add_argument("--json", action="store_true", help="the report as one JSON object on stdout")
    p.add_argument("--no-resume", action="store_true", help="a disconnect fails the session")
    p.add_argument(
        "--config-json",
        type=_config_json,
        metavar="JSON",
        help='TranscriptionConfig fields, e.g. \'{"language": "en-GB"}\'',
    )
    raw = p.add_argument_group("raw audio files (generated audio uses --sample-rate)")
    raw.add_argument("--encoding", choices=ENCODINGS, default="pcm16")
    raw.add_argument("--sample-rate", type=_positive_int, default=16000, metavar="HZ")
    raw.add_argument("--channels", type=_positive_int, default=1)


def _raise_fd_limit(needed: int) -> None:
    """One socket per session: lift the soft open-files limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def run_loadtest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        plans = load_plans(
            args.audio,
            args.generate,
            AudioFormat(args.encoding, args.sample_rate, args.channels),
            args.frame_ms,
            args.duration,
        )
    except (AudioError, OSError) as e:
        err.write(f"{PROG}: error: {e}\n")
        return 1
    _raise_fd_limit(args.sessions + 64)
    options = LoadTestOptions(
        url=args.url,
        sessions=args.sessions,
        frame_ms=args.frame_ms,
        ramp_up_s=args.ramp_up,
        speed=args.speed,
        # The gateway checks the fields (and names any unknown one in its error).
        config=cast(TranscriptionConfig, args.config_json),
        client=ClientOptions(token=args.token, resume=not args.no_resume),
    )
    run = await run_load_test(options, plans, progress=err if err.isatty() else None)
    report = build_report(run)
    if args.json:
        out.write(json.dumps(report) + "\n")
    else:
        out.write(format_table(report))
    return 0 if report["sessions"]["failed"] == 0 else 1
