"""The browser flow with authentication on, in real headless Chromium: the site's backend
(here, the test) exchanges its API key for a session token at POST /api/v1/tokens and
hands the page that token and its session id in the page's URL; the page never sees the
key, and its session is the tenant's."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser

from tests.support.audio import goforward, silence
from tests.support.auth_fleet import Fleet, auth_fleet, new_id, session_token
from tests.support.browser import chromium_with_microphone, write_wav
from tests.support.processes import Proc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet(
    log_dir: Path, redis_url: str, asr_server: Proc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    with auth_fleet(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        keys_dir=tmp_path_factory.mktemp("browser-auth"),
        names=["gw-page-auth"],
    ) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    audio = silence(500) + goforward() + silence(1500)
    wav = write_wav(tmp_path_factory.mktemp("mic-auth") / "goforward.wav", audio)
    yield from chromium_with_microphone(wav)


def test_the_page_streams_with_a_session_token_from_the_sites_backend(
    fleet: Fleet, browser: Browser, redis_url: str
) -> None:
    session_id = new_id("page-auth")
    token = session_token(fleet, fleet.keys["acme"], session_id)  # the site's backend
    query = urllib.parse.urlencode({"access_token": token, "session_id": session_id})
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{fleet.http}/?{query}")
        page.click("#start")
        page.wait_for_selector("body[data-state=live]", timeout=15_000)
        assert page.inner_text("#session-id") == session_id
        page.wait_for_function(
            "Number(document.getElementById('audio-ms').textContent) >= 4000", timeout=30_000
        )
        page.click("#stop")
        page.wait_for_selector("body[data-state=stopped]", timeout=60_000)
        finals = page.locator("#finals .final").all_inner_texts()
    finally:
        context.close()
    assert finals
    assert "forward" in " ".join(finals)
    # The session is the tenant's: stored under its scoped id, and nowhere else.
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.hget(f"speech:{{acme/{session_id}}}:meta", "state") == "stopped"
    assert not client.exists(f"speech:{{{session_id}}}:meta")
