"""The README's protocol examples against a real gateway: JavaScript
(docs/examples/transcribe.mjs, with the machine's Node.js) and Python (the SDK)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from speech_client import read_audio, transcribe_all
from tests.support.audio import GOFORWARD
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import REPO, Proc

pytestmark = pytest.mark.integration

NODE = shutil.which("node")


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[Proc]:
    proc = start_gateway(
        log_dir, redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_server.port}", name="gw-js"
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.skipif(NODE is None, reason="Node.js is not on this machine")
def test_javascript_example_prints_the_final(gateway: Proc) -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--experimental-websocket", "--no-warnings", "docs/examples/transcribe.mjs",
         f"ws://127.0.0.1:{gateway.port}", str(GOFORWARD)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "go forward ten meters\n"), result.stderr


async def test_python_example_prints_the_text(gateway: Proc) -> None:
    audio = read_audio(GOFORWARD)
    result = await transcribe_all(f"ws://127.0.0.1:{gateway.port}", audio, speed=0)
    assert result.text == "go forward ten meters"
