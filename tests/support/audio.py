"""The real speech the tests use: Debian's pocketsphinx-testdata."""

from __future__ import annotations

import wave
from pathlib import Path

DATA = Path("/usr/share/pocketsphinx/test/data")
GOFORWARD = DATA / "goforward.raw"
LIBRIVOX = DATA / "librivox"


def librivox_clips() -> list[tuple[str, bytes, str]]:
    """(name, 16 kHz 16-bit mono PCM, human transcript) for each LibriVox clip."""
    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, name = line.rpartition("(")
        refs[name.strip(" )")] = text.replace("<s>", "").replace("</s>", "").strip()
    clips = []
    for path in sorted(LIBRIVOX.glob("*.wav")):
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (16000, 2, 1)
            clips.append((path.stem, w.readframes(w.getnframes()), refs[path.stem]))
    return clips


def goforward() -> bytes:
    return GOFORWARD.read_bytes()


def silence(ms: int, rate: int = 16000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)
