from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from speech_client.cli import config_from_args, parse_args, run_transcribe
from speech_client.events import parse_event
from speech_client.output import JsonPrinter, TextPrinter

from .standin_peer import StandInPeer, counting_audio, running


def transcript(seq: int, text: str, *, final: bool, channel: int = 0) -> dict[str, object]:
    return {"event": "transcript", "seq": seq, "is_final": final, "channel": channel,
            "start_ms": 0, "end_ms": 100, "stability": 0.5,
            "alternatives": [{"transcript": text, "confidence": 0.9}]}  # fmt: skip


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_defaults() -> None:
    args = parse_args(["transcribe", "a.wav"])
    assert args.command == "transcribe"
    assert (args.frame_ms, args.speed, args.json, args.no_interim) == (100, 1.0, False, False)
    assert len(args.session_id) == 32
    assert args.url == f"ws://127.0.0.1:8080/api/v1/transcribe/{args.session_id}"
    assert config_from_args(args) == {}  # the server's defaults stay the defaults


def test_recognition_options_map_to_config_fields() -> None:
    args = parse_args(["transcribe", "a.raw", "--language", "de-DE", "--max-alternatives", "3",
                       "--word-time-offsets", "--no-interim", "--no-punctuation",
                       "--diarization", "--max-speakers", "4", "--boost", "Riva",
                       "--boost", "NGINX", "--boost-value", "5", "--model", "m"])  # fmt: skip
    assert config_from_args(args) == {
        "language": "de-DE", "max_alternatives": 3, "enable_word_time_offsets": True,
        "enable_interim_results": False, "enable_automatic_punctuation": False,
        "speaker_diarization": True, "max_speakers": 4, "model": "m",
        "boosted_phrases": [{"phrases": ["Riva", "NGINX"], "boost": 5.0}],
    }  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["transcribe"],
        ["transcribe", "a.wav", "--session-id", "bad id"],
        ["transcribe", "a.wav", "--frame-ms", "0"],
        ["transcribe", "a.wav", "--encoding", "flac"],
        ["transcribe", "a.wav", "--url", "localhost:8080"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2


def test_terminal_shows_interims_in_place_and_finals_on_their_own_lines() -> None:
    out = Tty()
    printer = TextPrinter(out, interim=True, columns=lambda: 80)
    printer.show(parse_event(transcript(1, "go", final=False)))
    printer.show(parse_event(transcript(1, "go forward", final=False)))
    printer.show(parse_event(transcript(1, "go forward ten", final=True)))
    printer.show(parse_event(transcript(2, "me", final=False)))
    printer.close()
    assert out.getvalue() == (
        "\r\x1b[Kgo\r\x1b[Kgo forward\r\x1b[Kgo forward ten\n\r\x1b[Kme\r\x1b[K"
    )


def test_long_interims_show_their_latest_words_without_wrapping() -> None:
    out = Tty()
    TextPrinter(out, interim=True, columns=lambda: 6).show(
        parse_event(transcript(1, "abcdefghij", final=False))
    )
    assert out.getvalue() == "\r\x1b[Kfghij"


def test_without_interims_only_finals_and_channel_labels_for_stereo() -> None:
    out = io.StringIO()
    printer = TextPrinter(out, interim=False, channel_labels=True)
    printer.show(parse_event(transcript(1, "hidden", final=False)))
    printer.show(parse_event(transcript(1, "left", final=True, channel=0)))
    printer.show(parse_event(transcript(2, "right", final=True, channel=1)))
    assert out.getvalue() == "[ch0] left\n[ch1] right\n"


def test_json_prints_finals_as_received_and_the_summary() -> None:
    out = io.StringIO()
    printer = JsonPrinter(out)
    final = transcript(1, "x", final=True)
    stopped = {"event": "transcription_stopped", "session_id": "s" * 8, "audio_ms": 1,
               "finals": 1}  # fmt: skip
    for raw in (transcript(1, "x", final=False), final, {"event": "audio_committed",
                "committed_ms": 100}, stopped):  # fmt: skip
        printer.show(parse_event(raw))
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [final, stopped]


async def test_transcribe_json_end_to_end_through_the_stand_in_peer(tmp_path: Path) -> None:
    path = tmp_path / "a.raw"
    path.write_bytes(counting_audio(300))
    out, err = io.StringIO(), io.StringIO()
    async with running(StandInPeer()) as peer:
        args = parse_args(["transcribe", str(path), "--url", peer.url, "--speed", "0", "--json"])
        assert await run_transcribe(args, out, err) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line.get("seq") for line in lines] == [1, 2, 3, None]
    assert lines[-1]["event"] == "transcription_stopped"
    assert err.getvalue() == ""


async def test_server_error_exits_1_with_the_message_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "a.raw"
    path.write_bytes(counting_audio(300))
    error = {"code": "quota_exceeded", "message": "too many sessions", "retryable": False}
    out, err = io.StringIO(), io.StringIO()
    async with running(StandInPeer(error_at_bytes=1, error=error)) as peer:
        args = parse_args(["transcribe", str(path), "--url", peer.url, "--speed", "0"])
        assert await run_transcribe(args, out, err) == 1
    assert err.getvalue() == (
        "speech-client: error: quota_exceeded: too many sessions (close code 1008)\n"
    )
    assert out.getvalue() == ""


async def test_missing_file_exits_1(tmp_path: Path) -> None:
    err = io.StringIO()
    args = parse_args(["transcribe", str(tmp_path / "nope.wav")])
    assert await run_transcribe(args, io.StringIO(), err) == 1
    assert "nope.wav" in err.getvalue()
