"""The microphone source: blocks from PortAudio's thread reach the event loop in order,
stop() ends the stream, and no microphone is a clear error."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest

from speech_client.audio import AudioFormat
from speech_client.cli import parse_args, run_transcribe
from speech_client.microphone import MAX_QUEUED_FRAMES, Microphone, MicrophoneError
from tests.support.microphone import StandInMicrophone

PCM16 = AudioFormat("pcm16", 16000, 1)


async def test_blocks_arrive_in_order_until_stop() -> None:
    audio = bytes(range(256)) * 50  # 12800 bytes: four 100 ms blocks
    mic = StandInMicrophone(PCM16, frame_ms=100)
    mic.audio, mic.block_interval_s = audio, 0.01
    got = b""
    async with mic:
        async for frame in mic:
            assert len(frame) == 3200
            got += frame
            if len(got) >= len(audio):
                mic.stop()
    assert got[: len(audio)] == audio


async def test_a_stalled_consumer_is_an_error_not_silent_loss() -> None:
    mic = Microphone(PCM16, frame_ms=10)
    mic._loop = asyncio.get_running_loop()  # as __aenter__ does, without a device
    block = bytes(320)
    # PortAudio's thread calls back more often than the consumer takes frames.
    thread = threading.Thread(
        target=lambda: [mic.on_audio(block, 160, None, None) for _ in range(MAX_QUEUED_FRAMES + 5)]
    )
    thread.start()
    thread.join(10)
    await asyncio.sleep(0)  # the loop runs the callbacks queued from that thread
    with pytest.raises(MicrophoneError, match="dropped"):
        async for _ in mic:
            pass


def test_only_pcm16_and_file_or_mic() -> None:
    with pytest.raises(MicrophoneError):
        Microphone(AudioFormat("mulaw", 8000, 1))
    with pytest.raises(SystemExit):
        parse_args(["transcribe"])
    with pytest.raises(SystemExit):
        parse_args(["transcribe", "a.wav", "--mic"])
    assert parse_args(["transcribe", "--mic", "--duration", "2"]).duration == 2.0


async def test_no_microphone_here_is_a_clear_error() -> None:
    # This machine has no PortAudio device (or no PortAudio at all).
    err = io.StringIO()
    args = parse_args(["transcribe", "--mic", "--duration", "0.1", "--url", "ws://127.0.0.1:9"])
    assert await run_transcribe(args, io.StringIO(), err) == 1
    assert "microphone" in err.getvalue()
