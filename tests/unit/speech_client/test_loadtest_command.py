from __future__ import annotations

import io
import json
from typing import Any

import pytest

from speech_client.cli import parse_args
from speech_client.loadtest.command import run_loadtest
from speech_client.loadtest.runner import LoadTestOptions

from .standin_peer import StandInPeer, running


def test_defaults() -> None:
    args = parse_args(["loadtest", "--sessions", "5"])
    assert (args.url, args.sessions, args.ramp_up, args.duration) == (
        "ws://127.0.0.1:8080", 5, 0.0, None,
    )  # fmt: skip
    assert (args.audio, args.generate, args.speed, args.frame_ms) == ([], None, 1.0, 100)
    assert (args.json, args.no_resume, args.config_json) == (False, False, None)


def test_options() -> None:
    args = parse_args(["loadtest", "--url", "wss://fleet.example/speech", "--sessions", "500",
                       "--ramp-up", "60", "--duration", "120", "--audio", "a.wav", "b.raw",
                       "--speed", "1.5", "--frame-ms", "20", "--json", "--no-resume",
                       "--config-json", '{"language": "en-GB"}'])  # fmt: skip
    assert args.url == "wss://fleet.example/speech"
    assert (args.sessions, args.ramp_up, args.duration, args.audio) == (
        500,
        60,
        120,
        ["a.wav", "b.raw"],
    )
    assert (args.speed, args.frame_ms, args.json, args.no_resume) == (1.5, 20, True, True)
    assert args.config_json == {"language": "en-GB"}


@pytest.mark.parametrize(
    "argv",
    [
        ["loadtest"],
        ["loadtest", "--sessions", "0"],
        ["loadtest", "--sessions", "2", "--ramp-up", "-1"],
        ["loadtest", "--sessions", "2", "--duration", "0"],
        ["loadtest", "--sessions", "2", "--generate", "pink"],
        ["loadtest", "--sessions", "2", "--generate", "noise", "--audio", "a.wav"],
        ["loadtest", "--sessions", "2", "--config-json", "[1]"],
        ["loadtest", "--sessions", "2", "--config-json", "{"],
        ["loadtest", "--sessions", "2", "--url", "localhost:8080"],
        ["loadtest", "--sessions", "2", "--url", "ws://h/api/v1/transcribe/abcdefgh"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2


def test_sessions_start_evenly_over_the_ramp_up_with_distinct_ids() -> None:
    options = LoadTestOptions("ws://h", 4, ramp_up_s=2.0, run_id="abcd1234")
    assert [options.start_delay_s(i) for i in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert options.session_id(3) == "lt-abcd1234-00003"


# One session of 0.5 s, unpaced, as JSON.
SHORT_SESSION = ["loadtest", "--sessions", "1", "--duration", "0.5", "--speed", "0", "--json"]


async def run_cli(argv: list[str], url: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_loadtest(parse_args([*argv, "--url", url]), out, err)
    return code, json.loads(out.getvalue()), err.getvalue()


async def test_a_resumed_session_is_ok_and_counts_its_resume() -> None:
    # One session per stand-in peer: it keeps one session's audio.
    async with running(StandInPeer(drop_at_bytes=9600)) as peer:
        code, report, err = await run_cli(SHORT_SESSION, peer.url)
    assert (code, err) == (0, "")  # no progress line when stderr is not a terminal
    assert report["sessions"] == {"requested": 1, "ok": 1, "failed": 0}
    assert report["resumes"] == {"total": 1, "sessions": 1}
    assert report["finals"]["received"] == report["finals"]["reported"] == 5
    assert report["latency_ms"]["final"]["count"] == 5


async def test_a_failed_session_exits_1_with_its_codes() -> None:
    error = {"code": "backend_error", "message": "down", "retryable": False}
    async with running(
        StandInPeer(error_at_bytes=3200, error=error, error_close_code=1011)
    ) as peer:
        code, report, _ = await run_cli(SHORT_SESSION, peer.url)
    assert code == 1
    assert report["sessions"] == {"requested": 1, "ok": 0, "failed": 1}
    assert report["error_codes"] == {"backend_error": 1}
    assert report["close_codes"] == {"1011": 1}


async def test_unreadable_audio_exits_1_before_any_session() -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse_args(["loadtest", "--sessions", "1", "--audio", "/nonexistent.wav"])
    assert await run_loadtest(args, out, err) == 1
    assert out.getvalue() == ""
    assert "speech-client loadtest: error:" in err.getvalue()
