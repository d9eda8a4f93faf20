"""Decoding audio files, cutting them at pauses, and the subtitle formats: no servers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import srt
import webvtt

from gateway.files.chunking import BYTES_PER_MS, chunk_pcm, quietest_cut
from gateway.files.decode import AudioTooLong, UnsupportedAudio, decode_pcm16
from gateway.files.subtitles import to_srt, to_vtt
from gateway.files.transcript import FileTranscript, Segment, TimedWord
from tests.support.audio import goforward


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [
        ("WAV", "PCM_16", 16000, 1),
        ("WAV", "PCM_24", 44100, 2),
        ("FLAC", None, 48000, 1),
        ("OGG", "VORBIS", 44100, 1),
        ("OGG", "OPUS", 48000, 2),
        ("MP3", "MPEG_LAYER_III", 44100, 1),
    ],
)
def test_every_format_decodes_to_16k_mono(
    fmt: str, subtype: str | None, rate: int, channels: int
) -> None:
    pcm = b"".join(
        decode_pcm16(encoded(tone(3.0, rate, channels), rate, fmt, subtype), max_duration_s=60)
    )
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767
    # Lossy codecs pad a little; the length is 3 s of 16 kHz within 60 ms.
    assert abs(len(samples) - 48000) <= 960, len(samples)
    middle = samples[8000:40000]
    assert 0.15 < float(np.sqrt(np.mean(middle**2))) < 0.25  # the tone's RMS, 0.3/sqrt(2)
    # Still 440 Hz after resampling: count the zero crossings of one second.
    crossings = np.count_nonzero(np.diff(np.signbit(samples[16000:32000])))
    assert abs(crossings - 880) <= 8


def test_16k_pcm_wav_passes_through_unchanged() -> None:
    raw = goforward()
    wav = encoded(np.frombuffer(raw, dtype="<i2"), 16000, "WAV", "PCM_16")
    assert b"".join(decode_pcm16(wav, max_duration_s=60)) == raw


def test_not_audio_and_too_long_are_refused() -> None:
    with pytest.raises(UnsupportedAudio):
        list(decode_pcm16(io.BytesIO(b"this is not audio at all" * 100), max_duration_s=60))
    with pytest.raises(AudioTooLong, match="limit is 2 s"):
        list(decode_pcm16(encoded(tone(3.0, 16000), 16000, "WAV"), max_duration_s=2))


def test_chunks_are_cut_in_the_pause() -> None:
    loud = (np.full(16000 * 4, 8000, dtype="<i2")).tobytes()  # 4 s
    pause = bytes(16000 * 2 // 5)  # 200 ms of silence
    audio = loud + pause + loud + pause + loud
    chunks = list(chunk_pcm([audio[i : i + 5000] for i in range(0, len(audio), 5000)],
                            chunk_ms=5000, search_ms=2000))  # fmt: skip
    assert b"".join(pcm for _, pcm in chunks) == audio
    offsets = [offset for offset, _ in chunks]
    assert offsets == sorted(offsets)
    position = 0
    for offset, pcm in chunks:
        assert len(pcm) <= 5000 * BYTES_PER_MS
        assert offset * BYTES_PER_MS == position
        position += len(pcm)
    # Every cut lies inside a pause.
    for offset in offsets[1:]:
        assert audio[offset * BYTES_PER_MS : offset * BYTES_PER_MS + 2] == b"\x00\x00"


def test_quietest_cut_on_short_audio_takes_all() -> None:
    assert quietest_cut(b"\x01\x00" * 10, 0) == 20


TRANSCRIPT = FileTranscript(
    language="en-US",
    duration=9.0,
    segments=[
        Segment(0, 0.61, 2.2, "go forward ten meters", 0.9,
                (TimedWord("go", 0.61, 0.8), TimedWord("forward", 0.8, 1.3),
                 TimedWord("ten", 1.3, 1.7), TimedWord("meters", 1.7, 2.2))),
        Segment(1, 3.0, 8.9, " ".join(f"w{i}" for i in range(14)), 0.8,
                tuple(TimedWord(f"w{i}", 3 + i * 0.4, 3.3 + i * 0.4) for i in range(14))),
    ],
)  # fmt: skip


def test_srt_and_vtt_parse_and_cues_follow_the_words() -> None:
    cues = list(srt.parse(to_srt(TRANSCRIPT)))
    vtt = webvtt.from_buffer(io.StringIO(to_vtt(TRANSCRIPT)))
    assert [c.content for c in cues] == [c.text for c in vtt]
    assert cues[0].content == "go forward ten meters"
    assert (cues[0].start.total_seconds(), cues[0].end.total_seconds()) == (0.61, 2.2)
    # The long segment is split; its cues start and end on its words.
    words = TRANSCRIPT.segments[1].words
    assert [c.content for c in cues[1:]] == [
        " ".join(w.word for w in words[:12]), " ".join(w.word for w in words[12:])
    ]  # fmt: skip
    assert cues[1].start.total_seconds() == words[0].start
    assert cues[1].end.total_seconds() == pytest.approx(words[11].end)
    assert cues[2].end.total_seconds() == pytest.approx(words[-1].end)
    assert (vtt[0].start, vtt[0].end) == ("00:00:00.610", "00:00:02.200")
    assert [c.start for c in vtt][1:] == ["00:00:03.000", "00:00:07.800"]
