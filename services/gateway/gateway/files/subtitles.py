"""SRT and WebVTT from a transcript: one cue per segment, timed by its first and last word,
long segments split into cues of a readable length."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.files.transcript import FileTranscript, TimedWord

MAX_CUE_WORDS = 12
MAX_CUE_S = 6.0


def _timestamp(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def cues(transcript: FileTranscript) -> Iterator[tuple[float, float, str]]:
    """(start, end, text) of each cue, in order."""
    for segment in transcript.segments:
        if not segment.words:
            yield segment.start, segment.end, segment.text
            continue
        group: list[TimedWord] = []
        for word in segment.words:
            if group and (len(group) >= MAX_CUE_WORDS or word.end - group[0].start > MAX_CUE_S):
                yield group[0].start, group[-1].end, " ".join(w.word for w in group)
                group = []
            group.append(word)
        if len(group) == len(segment.words):
            # The whole segment in one cue: keep its text as recognised (punctuation).
            yield group[0].start, group[-1].end, segment.text
        else:
            yield group[0].start, group[-1].end, " ".join(w.word for w in group)


def to_srt(transcript: FileTranscript) -> str:
    blocks = [
        f"{i}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n"
        for i, (start, end, text) in enumerate(cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: FileTranscript) -> str:
    blocks = [
        f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n"
        for start, end, text in cues(transcript)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
