from __future__ import annotations

import wave
from pathlib import Path

import pytest

from speech_client.audio import Audio, AudioError, AudioFormat
from speech_client.loadtest.sources import generate, load_plans, plan_frames

PCM16 = AudioFormat()


def test_looped_audio_is_cut_in_whole_frames_for_the_duration() -> None:
    audio = Audio(bytes(range(256)) * 25, PCM16)  # 6400 bytes: 200 ms
    plan = plan_frames("a", audio, 60, 0.5)  # 1920-byte frames: 3 whole ones per pass
    assert plan.frame_bytes == 1920
    assert plan.audio_ms == 500
    assert [len(f) for f in plan.frames] == [1920] * 8 + [640]
    # each pass drops its partial tail frame and starts again at the top
    assert plan.frames[3] == plan.frames[0] == audio.data[:1920]
    assert plan.frames[8] == audio.data[3840 : 3840 + 640]  # frame 2 of a pass, cut


def test_frames_are_shared_not_copied_per_pass() -> None:
    plan = plan_frames("a", Audio(bytes(3200), PCM16), 100, 10)
    assert len(plan.frames) == 100
    assert all(f is plan.frames[0] for f in plan.frames)


def test_without_a_duration_a_file_plays_once() -> None:
    plan = plan_frames("a", Audio(bytes(5000), PCM16), 100, None)
    assert [len(f) for f in plan.frames] == [3200, 1800]


def test_audio_shorter_than_a_frame_cannot_loop() -> None:
    with pytest.raises(AudioError, match="shorter than one frame"):
        plan_frames("a", Audio(bytes(100), PCM16), 100, 5)


@pytest.mark.parametrize("kind", ["noise", "silence", "tone"])
def test_generated_audio_is_pcm16_of_the_requested_length(kind: str) -> None:
    audio = generate(kind, PCM16, 0.5)
    assert (audio.format, len(audio.data)) == (PCM16, 16000)
    assert (audio.data == bytes(16000)) == (kind == "silence")


def test_noise_is_the_same_every_run() -> None:
    assert generate("noise", PCM16, 0.1) == generate("noise", PCM16, 0.1)


def test_generated_audio_defaults_to_noise_for_30_seconds() -> None:
    (plan,) = load_plans([], None, AudioFormat(sample_rate_hz=8000), 100, None)
    assert (plan.name, plan.format, plan.audio_ms) == (
        "noise",
        AudioFormat(sample_rate_hz=8000),
        30000,
    )


def test_files_give_one_plan_each_with_their_own_format(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(16000))  # 1 s
    raw = tmp_path / "b.raw"
    raw.write_bytes(bytes(32000))  # 1 s at 16 kHz
    plans = load_plans([str(wav), str(raw)], None, PCM16, 100, 2.5)
    assert [(p.format.sample_rate_hz, p.audio_ms) for p in plans] == [(8000, 2500), (16000, 2500)]
