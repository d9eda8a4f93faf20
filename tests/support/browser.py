"""Debian's Chromium driven by Playwright for Python (never a downloaded browser), with a
fake microphone that plays a WAV file."""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from tests.support.processes import REPO

CHROMIUM = "/usr/bin/chromium"
# Where screenshots are kept after the run (.run/ is ignored by git).
ARTEFACTS = Path(os.environ.get("TEST_ARTEFACTS_DIR", REPO / ".run" / "artefacts"))

# This machine's network is closed: without these Chromium keeps trying (and failing) to
# reach Google's services at start and in the background.
_QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def write_wav(path: Path, pcm16: bytes, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16)
    return path


def chromium_with_microphone(wav: Path) -> Iterator[Browser]:
    """A headless Chromium whose microphone plays `wav` (in a loop) with no permission
    prompt; closed when the generator is."""
    args = [
        *_QUIET,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
