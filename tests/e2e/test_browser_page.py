"""The browser page in real headless Chromium, its microphone fed LibriVox speech: the
final text equals the speech server's own transcript of that audio, also when the gateway
serving the session drains (SIGTERM) or is killed mid-way (the page resumes on another).
Three gateways: each of the last two tests takes one away."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jiwer
import pytest
import redis
from playwright.sync_api import Browser, Page

from tests.support.audio import librivox_clips, silence
from tests.support.browser import ARTEFACTS, chromium_with_microphone, write_wav
from tests.support.fixtures_gateway import gateways_behind_nginx
from tests.support.processes import Proc
from tests.support.riva_direct import direct_finals
from tests.support.ws import frames

pytestmark = pytest.mark.integration

CLIPS = ("0880", "0890", "0930")  # about 12 s of speech in three sentences
LEAD_MS, PAUSE_MS, TAIL_MS = 1000, 500, 2500


def speech() -> bytes:
    clips = {name.rsplit("-", 1)[1]: pcm for name, pcm, _ in librivox_clips()}
    pause = silence(PAUSE_MS)
    return silence(LEAD_MS) + pause.join(clips[c] for c in CLIPS) + silence(TAIL_MS)


@pytest.fixture(scope="module")
def audio() -> bytes:
    return speech()


def server_transcript(asr_server: Proc, audio: bytes) -> list[str]:
    """The speech server's own finals for `audio`, called directly over gRPC."""
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    call = direct_finals(f"127.0.0.1:{asr_server.port}", frames(audio, 3200))
    with ThreadPoolExecutor(1) as pool:
        finals = pool.submit(asyncio.run, call).result()
    return [text for text, _ in finals]


@pytest.fixture(scope="module")
def reference(audio: bytes, asr_server: Proc) -> list[str]:
    """The speech server's transcript of the clip as it is on disk."""
    return server_transcript(asr_server, audio)


@pytest.fixture(scope="module")
def fleet(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[dict[str, Proc]]:
    with gateways_behind_nginx(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        names=["gw-page-1", "gw-page-2", "gw-page-3"],
    ) as (pods, nginx):
        yield {"nginx": nginx, **pods}


@pytest.fixture(scope="module")
def browser(audio: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    wav = write_wav(tmp_path_factory.mktemp("mic") / "speech.wav", audio)
    yield from chromium_with_microphone(wav)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 640})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def owner_of(redis_url: str, session_id: str) -> str:
    meta = redis.Redis.from_url(redis_url, decode_responses=True).hgetall(
        f"speech:{{{session_id}}}:meta"
    )
    return str(meta.get("owner", ""))


def speak_into_page(page: Page, fleet: dict[str, Proc], audio_ms: int) -> str:
    """Open the page through NGINX, start, wait until the microphone played the whole
    audio, stop; the session id."""
    page.goto(f"http://127.0.0.1:{fleet['nginx'].port}/?record")
    page.click("#start")
    page.wait_for_selector("body[data-state=live]", timeout=15_000)
    return page.inner_text("#session-id")


def finish(page: Page, audio_ms: int, screenshot: str) -> tuple[list[str], bytes]:
    """Stop once the microphone played the whole audio; (the finals shown, the audio the
    page captured and sent)."""
    page.wait_for_function(
        f"Number(document.getElementById('audio-ms').textContent) >= {audio_ms}",
        timeout=audio_ms + 30_000,
    )
    page.click("#stop")
    page.wait_for_selector("body[data-state=stopped]", timeout=60_000)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / screenshot))
    captured = base64.b64decode(page.evaluate("window.speechPage.recordedBase64()"))
    return page.locator("#finals .final").all_inner_texts(), captured


def close_to(page_finals: list[str], reference: list[str]) -> None:
    """The browser's capture and resampling keep the speech intelligible: the same
    sentences, nearly the same words as the clip on disk gives."""
    assert len(page_finals) == len(reference), (page_finals, reference)
    # Where the capture starts within the file's loop shifts PocketSphinx's 10 ms frames,
    # which changes a few words: the exact comparison is with the audio the page sent.
    error_rate = jiwer.wer(" ".join(reference), " ".join(page_finals))
    assert error_rate <= 0.35, (page_finals, reference)


def test_page_transcribes_the_microphone(
    page: Page, fleet: dict[str, Proc], audio: bytes, reference: list[str], asr_server: Proc
) -> None:
    audio_ms = len(audio) // 32
    session_id = speak_into_page(page, fleet, audio_ms)
    assert len(session_id) == 36  # a UUID
    # Interim text shows while the first sentence is spoken, before its final.
    page.wait_for_function(
        "document.getElementById('interim').textContent.length > 0", timeout=20_000
    )
    finals, captured = finish(page, audio_ms, "browser-page.png")
    assert len(captured) // 32 >= audio_ms
    # Exactly what the speech server makes of the audio the page sent; and that audio is
    # the clip, resampled by the page.
    assert finals == server_transcript(asr_server, captured)
    close_to(finals, reference)
    assert page.inner_text("#interim") == ""
    assert page.inner_text("#resumes") == "0"


def test_page_moves_when_its_gateway_drains(
    page: Page,
    fleet: dict[str, Proc],
    audio: bytes,
    reference: list[str],
    redis_url: str,
    asr_server: Proc,
) -> None:
    """SIGTERM (a rolling deploy): the gateway sends `reconnect`, the page resumes on
    another at once, and the gateway exits once its clients have moved."""
    audio_ms = len(audio) // 32
    session_id = speak_into_page(page, fleet, audio_ms)
    page.wait_for_selector("#finals .final", timeout=30_000)
    owner = owner_of(redis_url, session_id)
    fleet[owner].stop(timeout=30)  # SIGTERM: drain, then exit
    assert not fleet[owner].alive()
    finals, captured = finish(page, audio_ms, "browser-page-drained.png")
    assert int(page.inner_text("#resumes")) >= 1
    assert owner_of(redis_url, session_id) != owner
    assert finals == server_transcript(asr_server, captured)
    close_to(finals, reference)


def test_page_resumes_when_its_gateway_is_killed(
    page: Page,
    fleet: dict[str, Proc],
    audio: bytes,
    reference: list[str],
    redis_url: str,
    asr_server: Proc,
) -> None:
    audio_ms = len(audio) // 32
    session_id = speak_into_page(page, fleet, audio_ms)
    page.wait_for_selector("#finals .final", timeout=30_000)
    owner = owner_of(redis_url, session_id)
    fleet[owner].kill_group()
    finals, captured = finish(page, audio_ms, "browser-page-resumed.png")
    assert int(page.inner_text("#resumes")) >= 1
    # Nothing lost, nothing twice: the same as one uninterrupted stream of that audio.
    assert finals == server_transcript(asr_server, captured)
    close_to(finals, reference)
