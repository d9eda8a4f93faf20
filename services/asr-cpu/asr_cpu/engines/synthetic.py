"""The synthetic engine: no decoding, deterministic words at a steady pace.

For load tests of the gateway. It must carry hundreds of real-time streams on one core,
so per request it only counts and slices bytes and updates a running CRC-32; words come
from the CRC of each window's bytes, so the same audio gives the same finals whatever
the request sizes, and a stream started at a final's end offset (a whole number of
windows) gives the same later finals.
"""

from __future__ import annotations

import zlib

from asr_cpu.engines.base import StreamRecognizer
from asr_cpu.results import Alternative, Result, Word
from asr_cpu.stream_config import StreamSettings

VOCABULARY = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu", "one", "two", "three", "four", "five", "six",
)  # fmt: skip
WORDS_PER_SECOND = 2.5
CONFIDENCE = 0.9
INTERIM_STABILITY = 0.5


def synthetic_words(crc: int, count: int) -> list[str]:
    """`count` words picked by a small LCG seeded with a window's CRC-32."""
    state = crc
    words = []
    for _ in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        words.append(VOCABULARY[(state >> 16) % len(VOCABULARY)])
    return words


class SyntheticStream:
    __slots__ = (
        "_bytes_per_second",
        "_crc",
        "_final_bytes",
        "_interim_bytes",
        "_next_interim",
        "_pos",
        "_settings",
        "_window_start",
    )

    def __init__(self, settings: StreamSettings, interim_every_s: float, final_every_s: float):
        rate, frame = settings.sample_rate, settings.bytes_per_frame
        self._settings = settings
        self._bytes_per_second = rate * frame
        self._final_bytes = max(1, round(final_every_s * rate)) * frame
        self._interim_bytes = max(1, round(interim_every_s * rate)) * frame
        self._pos = 0  # bytes since the start of the stream
        self._window_start = 0
        self._crc = 0
        self._next_interim = self._interim_bytes

    def feed(self, audio: bytes) -> list[Result]:
        results: list[Result] = []
        size = len(audio)
        done = 0
        while done < size:
            window_end = self._window_start + self._final_bytes
            take = min(size - done, window_end - self._pos)
            # Whole-request CRC when no boundary falls inside (the usual case): no copy.
            part = audio if take == size else memoryview(audio)[done : done + take]
            self._crc = zlib.crc32(part, self._crc)
            done += take
            self._pos += take
            if self._pos == window_end:
                results.append(self._result(True))
                self._window_start = self._pos
                self._crc = 0
                self._next_interim = self._pos + self._interim_bytes
        if self._settings.interim_results and self._pos >= self._next_interim:
            results.append(self._result(False))
            steps = (self._pos - self._window_start) // self._interim_bytes + 1
            self._next_interim = self._window_start + steps * self._interim_bytes
        return results

    def finish(self) -> list[Result]:
        if self._pos == self._window_start:
            return []
        return [self._result(True)]

    def close(self) -> None:
        pass

    def _result(self, is_final: bool) -> Result:
        per_s = self._bytes_per_second
        start_ms = self._window_start * 1000 // per_s
        span_ms = (self._pos - self._window_start) * 1000 // per_s
        count = max(1, round(span_ms / 1000 * WORDS_PER_SECOND))
        words = synthetic_words(self._crc, count)
        timed: tuple[Word, ...] = ()
        if is_final and self._settings.word_time_offsets:
            step = span_ms / count
            timed = tuple(
                Word(w, start_ms + round(i * step), start_ms + round((i + 1) * step), CONFIDENCE)
                for i, w in enumerate(words)
            )
        return Result(
            alternatives=(Alternative(" ".join(words), CONFIDENCE if is_final else 0.0, timed),),
            is_final=is_final,
            stability=0.0 if is_final else INTERIM_STABILITY,
            audio_processed=self._pos / per_s,
        )


class SyntheticEngine:
    model_name = "synthetic"
    blocking = False

    def __init__(self, interim_every_s: float = 0.2, final_every_s: float = 2.0) -> None:
        self._interim_every_s = interim_every_s
        self._final_every_s = final_every_s

    def open_stream(self, settings: StreamSettings) -> StreamRecognizer:
        return SyntheticStream(settings, self._interim_every_s, self._final_every_s)

    def describe(self) -> dict[str, str]:
        return {
            "type": "online",
            "streaming": "true",
            "language_code": "en-US",
            "engine": "synthetic",
            "interim_every_seconds": str(self._interim_every_s),
            "final_every_seconds": str(self._final_every_s),
        }
