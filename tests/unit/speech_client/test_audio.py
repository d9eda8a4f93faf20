from __future__ import annotations

import wave
from pathlib import Path

import pytest

from speech_client.audio import AudioError, AudioFormat, read_audio, split_frames

GOFORWARD = Path("/usr/share/pocketsphinx/test/data/goforward.raw")


def write_wav(path: Path, *, rate: int = 16000, channels: int = 1, width: int = 2,
              frames: int = 16000) -> Path:  # fmt: skip
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(frames * channels * width))
    return path


def test_wav_format_comes_from_its_header(tmp_path: Path) -> None:
    audio = read_audio(write_wav(tmp_path / "a.wav", rate=8000, channels=2, frames=800),
                       AudioFormat("mulaw", 44100, 1))  # fmt: skip
    assert audio.format == AudioFormat("pcm16", 8000, 2)
    assert len(audio.data) == 800 * 2 * 2
    assert audio.duration_ms == 100


def test_wav_other_than_16_bit_pcm_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="only 16-bit PCM WAV"):
        read_audio(write_wav(tmp_path / "a.wav", width=1))


def test_wav_with_unknown_format_tag_is_refused(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav")
    data = bytearray(path.read_bytes())
    data[20:22] = (3).to_bytes(2, "little")  # WAVE_FORMAT_IEEE_FLOAT
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="not a 16-bit PCM WAV"):
        read_audio(path)


def test_raw_file_uses_the_given_format_default_pcm16_16k_mono(tmp_path: Path) -> None:
    path = tmp_path / "a.raw"
    path.write_bytes(bytes(800))
    assert read_audio(path).format == AudioFormat("pcm16", 16000, 1)
    assert read_audio(path, AudioFormat("mulaw", 8000)).duration_ms == 100


@pytest.mark.skipif(not GOFORWARD.exists(), reason="pocketsphinx test data not installed")
def test_goforward_raw_frames_into_100_ms_frames() -> None:
    frames = list(read_audio(GOFORWARD).frames(100))
    assert all(len(f) == 3200 for f in frames[:-1])
    assert 0 < len(frames[-1]) <= 3200
    assert b"".join(frames) == GOFORWARD.read_bytes()


def test_frames_hold_whole_samples_and_the_last_is_shorter() -> None:
    fmt = AudioFormat("pcm16", 16000, 2)
    frames = list(split_frames(bytes(4 * 1000), fmt, 20))  # 1000 stereo samples
    assert [len(f) for f in frames] == [1280, 1280, 1280, 160]


def test_frame_size_rounds_down_to_whole_samples_at_odd_rates() -> None:
    assert AudioFormat("pcm16", 22050, 1).frame_bytes(10) == 220 * 2
    assert AudioFormat("mulaw", 8000, 1).frame_bytes(100) == 800


def test_trailing_partial_sample_is_dropped() -> None:
    frames = list(split_frames(bytes(7), AudioFormat("pcm16", 16000, 1), 100))
    assert frames == [bytes(6)]


def test_millisecond_offsets_map_to_whole_samples() -> None:
    fmt = AudioFormat("pcm16", 44100, 2)
    assert fmt.ms_to_bytes(1) == 44 * 4
    assert fmt.ms_to_bytes(1000) == 44100 * 4


@pytest.mark.parametrize(
    ("encoding", "rate", "channels"), [("flac", 16000, 1), ("pcm16", 0, 1), ("pcm16", 16000, 0)]
)
def test_unusable_formats_are_refused(encoding: str, rate: int, channels: int) -> None:
    with pytest.raises(AudioError):
        AudioFormat(encoding, rate, channels)
