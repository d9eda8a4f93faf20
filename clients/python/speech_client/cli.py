"""The `speech-client` command: `speech-client transcribe FILE [options]`, and
`speech-client loadtest --sessions N [options]` (speech_client.loadtest.command).

Exit codes: 0 success, 1 the transcription failed (message on stderr), 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import TextIO

from speech_client.audio import DEFAULT_FRAME_MS, ENCODINGS, AudioError, AudioFormat, read_audio
from speech_client.client import ClientOptions, Transcription
from speech_client.config import TranscriptionConfig
from speech_client.errors import TranscriptionError
from speech_client.events import (
    Reconnect,
    TranscriptionResumed,
    TranscriptionStarted,
    TranscriptionStopped,
)
from speech_client.loadtest import command as loadtest_command
from speech_client.microphone import Microphone, MicrophoneError
from speech_client.output import JsonPrinter, Printer, TextPrinter
from speech_client.progress import ProgressBar
from speech_client.subtitles import SubtitlePrinter
from speech_client.urls import DEFAULT_URL, check_session_id, session_url

PROG = "speech-client"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _session_id(text: str) -> str:
    try:
        return check_session_id(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Stream audio to the speech gateway and print its transcripts."
    )
    # Subcommands, so that others (e.g. a load generator) can sit beside `transcribe`.
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "transcribe",
        help="transcribe an audio file",
        description="Stream a WAV (16-bit PCM) or raw audio file and print the transcript.",
    )
    p.add_argument(
        "file", metavar="FILE", nargs="?", help="a WAV file, or raw audio (see --encoding)"
    )
    mic = p.add_argument_group("microphone (instead of FILE; the speech-client[mic] extra)")
    mic.add_argument(
        "--mic", action="store_true", help="stream the microphone until Ctrl-C or --duration"
    )
    mic.add_argument("--mic-device", help="input device name or index (default: the system's)")
    mic.add_argument("--duration", type=float, metavar="S", help="stop the microphone after S s")

    conn = p.add_argument_group("connection")
    conn.add_argument(
        "--url",
        default=os.environ.get("SPEECH_URL", DEFAULT_URL),
        help="gateway base URL, or a full .../api/v1/transcribe/ID URL"
        " (default: $SPEECH_URL or %(default)s)",
    )
    conn.add_argument(
        "--session-id", type=_session_id, help="8-64 of [A-Za-z0-9_-] (default: a new UUID)"
    )
    conn.add_argument(
        "--token",
        default=os.environ.get("SPEECH_TOKEN"),
        help="bearer token (default: $SPEECH_TOKEN)",
    )
    conn.add_argument(
        "--no-resume", action="store_true", help="fail on a disconnect instead of resuming"
    )
    conn.add_argument(
        "--resume",
        metavar="TOKEN",
        help="continue an interrupted session (with its --session-id and the resume token"
        " that -v printed): its finals are replayed and FILE is sent again from the"
        " server's committed offset",
    )
    conn.add_argument(
        "--last-seq",
        type=int,
        default=0,
        metavar="N",
        help="with --resume: the last final already seen (default 0: replay them all)",
    )

    stream = p.add_argument_group("streaming")
    stream.add_argument(
        "--frame-ms", type=_positive_int, default=DEFAULT_FRAME_MS, help="ms of audio per frame"
    )
    stream.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="pace as a multiple of real time; 0 = as fast as possible (the gateway refuses"
        " audio much faster than real time after a burst: error audio_too_fast)",
    )

    raw = p.add_argument_group("raw audio (ignored for WAV files, whose header says)")
    raw.add_argument("--encoding", choices=ENCODINGS, default="pcm16")
    raw.add_argument("--sample-rate", type=_positive_int, default=16000, metavar="HZ")
    raw.add_argument("--channels", type=_positive_int, default=1)

    rec = p.add_argument_group("recognition")
    rec.add_argument("--language", help="BCP-47 code (server default: en-US)")
    rec.add_argument("--model", help="backend model name (server default: the backend's)")
    rec.add_argument("--max-alternatives", type=_positive_int, metavar="N")
    rec.add_argument("--word-time-offsets", action="store_true", help="words with timings")
    rec.add_argument("--no-punctuation", action="store_true")
    rec.add_argument("--profanity-filter", action="store_true")
    rec.add_argument("--diarization", action="store_true", help="label speakers")
    rec.add_argument("--max-speakers", type=_positive_int, metavar="N")
    rec.add_argument("--boost", action="append", default=[], metavar="PHRASE", help="repeatable")
    rec.add_argument("--boost-value", type=float, default=10.0, help="for --boost phrases")

    out = p.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=("text", "json", "srt", "vtt"),
        default="text",
        help="text (interims in place on a terminal), JSON lines, or subtitles: SRT or"
        " WebVTT, one cue per final, timed by its words",
    )
    out.add_argument(
        "--json",
        action="store_true",
        help="same as --format json: one JSON line per final, then the summary",
    )
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: when stderr is a terminal and the output is not)",
    )
    out.add_argument("--no-interim", action="store_true", help="finals only")
    out.add_argument(
        "-v", "--verbose", action="store_true", help="session events and summary on stderr"
    )
    loadtest_command.add_parser(commands)
    return parser


def config_from_args(args: argparse.Namespace) -> TranscriptionConfig:
    """Only the options given: the server's defaults stay the defaults."""
    config = TranscriptionConfig()
    if args.language:
        config["language"] = args.language
    if args.model:
        config["model"] = args.model
    if args.max_alternatives is not None:
        config["max_alternatives"] = args.max_alternatives
    if args.word_time_offsets:
        config["enable_word_time_offsets"] = True
    if args.no_punctuation:
        config["enable_automatic_punctuation"] = False
    if args.profanity_filter:
        config["profanity_filter"] = True
    if args.diarization:
        config["speaker_diarization"] = True
    if args.max_speakers is not None:
        config["max_speakers"] = args.max_speakers
    if args.no_interim:
        config["enable_interim_results"] = False
    if args.boost:
        config["boosted_phrases"] = [{"phrases": args.boost, "boost": args.boost_value}]
    if args.format in ("srt", "vtt"):
        config["enable_word_time_offsets"] = True  # cue times come from the words
    return config


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "transcribe":
        return args
    if args.json:
        args.format = "json"
    if (args.file is None) == (not args.mic):
        parser.error("give either FILE or --mic")
    if args.resume and args.mic:
        parser.error("--resume re-sends a file: it cannot be used with --mic")
    if args.resume and args.session_id is None and "/api/v1/transcribe/" not in args.url:
        parser.error("--resume needs the session's --session-id")
    if args.session_id is None and "/api/v1/transcribe/" not in args.url:
        args.session_id = uuid.uuid4().hex
    try:
        args.url, args.session_id = session_url(args.url, args.session_id)
    except ValueError as e:
        parser.error(str(e))
    return args


def make_printer(args: argparse.Namespace, out: TextIO, channels: int) -> Printer:
    if args.format == "json":
        return JsonPrinter(out)
    if args.format in ("srt", "vtt"):
        return SubtitlePrinter(out, args.format)
    # Interims only on a terminal: in a file or a pipe they would be noise.
    return TextPrinter(
        out, interim=not args.no_interim and out.isatty(), channel_labels=channels > 1
    )


async def run_transcribe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.mic:
        return await _run_microphone(args, out, err)
    try:
        audio = read_audio(args.file, AudioFormat(args.encoding, args.sample_rate, args.channels))
    except (AudioError, OSError) as e:
        err.write(f"{PROG}: error: {e}\n")
        return 1
    show_progress = args.progress
    if show_progress is None:
        show_progress = err.isatty() and not out.isatty()
    progress = ProgressBar(err, audio.duration_ms) if show_progress else None
    return await _stream(args, audio.frames(args.frame_ms), audio.format, progress, out, err)


async def _run_microphone(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    audio_format = AudioFormat("pcm16", args.sample_rate, args.channels)
    device = int(args.mic_device) if (args.mic_device or "").isdigit() else args.mic_device
    loop = asyncio.get_running_loop()
    try:
        async with Microphone(audio_format, frame_ms=args.frame_ms, device=device) as mic:
            # Ctrl-C (or --duration) ends the audio; the last finals still arrive.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, mic.stop)
            if args.duration is not None:
                loop.call_later(args.duration, mic.stop)
            try:
                return await _stream(args, mic, audio_format, None, out, err, speed=0)
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGINT)
    except MicrophoneError as e:
        err.write(f"{PROG}: error: {e}\n")
        return 1


async def _stream(
    args: argparse.Namespace,
    frames: Iterable[bytes] | AsyncIterable[bytes],
    audio_format: AudioFormat,
    progress: ProgressBar | None,
    out: TextIO,
    err: TextIO,
    *,
    speed: float | None = None,
) -> int:
    options = ClientOptions(token=args.token, resume=not args.no_resume)
    printer = make_printer(args, out, audio_format.channels)
    session = Transcription(
        args.url,
        frames,
        audio_format,
        config=config_from_args(args),
        session_id=args.session_id,
        speed=args.speed if speed is None else speed,  # a microphone paces itself
        options=options,
        resume_token=args.resume,
        last_seq=args.last_seq,
        skip_committed=True,  # FILE is the session's audio from its start
    )
    try:
        async with session:
            async for event in session:
                printer.show(event)
                if progress is not None:
                    progress.show(event)
                if args.verbose:
                    _describe(event, err)
    except TranscriptionError as e:
        printer.close()
        if progress is not None:
            progress.close()
        err.write(f"{PROG}: error: {e}\n")
        return 1
    printer.close()
    if progress is not None:
        progress.close()
    return 0


def _describe(event: object, err: TextIO) -> None:
    match event:
        case TranscriptionStarted(session_id=session_id, resume_token=token):
            err.write(f"{PROG}: session {session_id} started (resume token {token})\n")
        case Reconnect(reason=reason):
            err.write(f"{PROG}: reconnecting: {reason}\n")
        case TranscriptionResumed(resume_from_ms=ms, replayed_finals=n):
            err.write(f"{PROG}: resumed from {ms} ms ({n} finals replayed)\n")
        case TranscriptionStopped(audio_ms=ms, finals=n):
            err.write(f"{PROG}: done: {ms / 1000:.1f} s of audio, {n} finals\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)  # exits with 2 on a usage error
    try:
        if args.command == "transcribe":
            return asyncio.run(run_transcribe(args, sys.stdout, sys.stderr))
        if args.command == "loadtest":
            return asyncio.run(loadtest_command.run_loadtest(args, sys.stdout, sys.stderr))
        raise AssertionError(f"unhandled command {args.command}")
    except KeyboardInterrupt:
        sys.stdout.write("\n" if sys.stdout.isatty() else "")
        return 130
