"""The synthetic engine: words from the audio's content, at a steady pace."""

from __future__ import annotations

import os

import pytest

from asr_cpu.engines.synthetic import SyntheticStream, synthetic_words
from asr_cpu.results import Result
from asr_cpu.stream_config import Encoding, StreamSettings

RATE = 16000
SETTINGS = StreamSettings(Encoding.LINEAR_PCM, RATE, 1, False, 1, True, True, 0)
AUDIO = os.urandom(2 * RATE * 9 + 3200)  # 9.1 s


def run(audio: bytes, chunk: int, settings: StreamSettings = SETTINGS) -> list[Result]:
    stream = SyntheticStream(settings, interim_every_s=0.2, final_every_s=2.0)
    results = [r for i in range(0, len(audio), chunk) for r in stream.feed(audio[i : i + chunk])]
    return results + stream.finish()


def finals(results: list[Result]) -> list[tuple[str, float]]:
    return [(r.transcript, r.audio_processed) for r in results if r.is_final]


def test_words_are_a_function_of_the_crc() -> None:
    assert synthetic_words(1234, 5) == synthetic_words(1234, 5)
    assert synthetic_words(1234, 5) != synthetic_words(1235, 5)


@pytest.mark.parametrize("chunk", [2, 1184, 3200, 64000, 10**9])
def test_finals_do_not_depend_on_request_size(chunk: int) -> None:
    assert finals(run(AUDIO, chunk)) == finals(run(AUDIO, 3200))


def test_a_final_every_two_seconds_and_one_for_the_rest() -> None:
    offsets = [p for _, p in finals(run(AUDIO, 3200))]
    assert offsets == [2.0, 4.0, 6.0, 8.0, 9.1]
    assert all(len(t.split()) == 5 for t, _ in finals(run(AUDIO, 3200))[:4])


def test_resume_at_a_final_end_gives_the_same_later_finals() -> None:
    whole = finals(run(AUDIO, 3200))
    resumed = finals(run(AUDIO[2 * RATE * 4 :], 1184))
    assert [t for t, _ in resumed] == [t for t, _ in whole[2:]]


def test_interims_every_200_ms_of_audio() -> None:
    interims = [r for r in run(AUDIO[: 2 * RATE * 2], 1600) if not r.is_final]
    assert len(interims) == 9  # 200..1800 ms; at 2000 ms the final takes its place
    assert all(0 < r.stability < 1 for r in interims)


def test_word_offsets_cover_the_window() -> None:
    last = [r for r in run(AUDIO, 3200) if r.is_final][-1]
    words = last.alternatives[0].words
    assert (words[0].start_ms, words[-1].end_ms) == (8000, 9100)
    assert [w.word for w in words] == last.transcript.split()


def test_mulaw_counts_one_byte_per_sample() -> None:
    settings = StreamSettings(Encoding.MULAW, 8000, 1, False, 1, False, False, 0)
    assert [p for _, p in finals(run(AUDIO[:20000], 800, settings))] == [2.0, 2.5]


def test_no_audio_no_final() -> None:
    assert run(b"", 3200) == []
