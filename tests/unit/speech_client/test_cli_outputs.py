"""The CLI's subtitle output and progress bar, from events alone."""

from __future__ import annotations

import io

import srt
import webvtt

from speech_client.cli import config_from_args, parse_args
from speech_client.events import parse_event
from speech_client.progress import ProgressBar
from speech_client.subtitles import SubtitlePrinter


def final(seq: int, text: str, start: int, end: int, words: bool) -> dict[str, object]:
    alternative: dict[str, object] = {"transcript": text, "confidence": 0.9}
    if words:
        alternative["words"] = [
            {"word": w, "start_ms": start + 10 + 100 * i, "end_ms": start + 90 + 100 * i,
             "confidence": 0.9} for i, w in enumerate(text.split())
        ]  # fmt: skip
    return {"event": "transcript", "seq": seq, "is_final": True, "channel": 0,
            "start_ms": start, "end_ms": end, "stability": 1.0,
            "alternatives": [alternative]}  # fmt: skip


EVENTS = [
    {"event": "transcript", "seq": 1, "is_final": False, "channel": 0, "start_ms": 0,
     "end_ms": 300, "stability": 0.1, "alternatives": [{"transcript": "go", "confidence": 0}]},
    final(1, "go forward", 500, 900, words=True),
    final(2, "", 900, 1000, words=False),  # an empty final makes no cue
    final(3, "ten meters", 3_723_000, 3_724_500, words=False),
]  # fmt: skip


def test_srt_cues_are_timed_by_words_or_by_the_final() -> None:
    out = io.StringIO()
    printer = SubtitlePrinter(out, "srt")
    for raw in EVENTS:
        printer.show(parse_event(raw))
    cues = list(srt.parse(out.getvalue()))
    assert [(c.index, c.content) for c in cues] == [(1, "go forward"), (2, "ten meters")]
    assert (cues[0].start.total_seconds(), cues[0].end.total_seconds()) == (0.51, 0.69)
    assert srt.timedelta_to_srt_timestamp(cues[1].start) == "01:02:03,000"


def test_vtt_has_its_header_and_the_same_cues() -> None:
    out = io.StringIO()
    printer = SubtitlePrinter(out, "vtt")
    for raw in EVENTS:
        printer.show(parse_event(raw))
    captions = webvtt.from_buffer(io.StringIO(out.getvalue()))
    assert [(c.start, c.end, c.text) for c in captions] == [
        ("00:00:00.510", "00:00:00.690", "go forward"),
        ("01:02:03.000", "01:02:04.500", "ten meters"),
    ]


def test_subtitle_formats_ask_for_word_times() -> None:
    assert config_from_args(parse_args(["transcribe", "a.wav", "--format", "srt"])) == {
        "enable_word_time_offsets": True
    }
    assert parse_args(["transcribe", "a.wav", "--json"]).format == "json"


def test_progress_bar_follows_committed_audio() -> None:
    err = io.StringIO()
    bar = ProgressBar(err, total_ms=10_000)
    bar.show(parse_event({"event": "audio_committed", "committed_ms": 2500}))
    bar.show(parse_event(final(1, "a", 0, 5000, words=False)))
    bar.show(parse_event({"event": "audio_committed", "committed_ms": 4000}))  # no step back
    bar.close()
    frames = err.getvalue().split("\r")[1:]
    assert frames[0].startswith("[" + "#" * 8 + "." * 22 + "]  25% 2.5/10.0 s")
    assert frames[-1] == "[" + "#" * 15 + "." * 15 + "]  50% 5.0/10.0 s\n"
