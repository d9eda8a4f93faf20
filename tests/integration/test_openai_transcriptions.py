"""`POST /v1/audio/transcriptions` through NGINX with the official `openai` package: every
response format, streaming, long files in chunks, and the limits."""

from __future__ import annotations

import contextlib
import http.client
import io
import itertools
import wave
from collections.abc import Iterator
from pathlib import Path

import jiwer
import numpy as np
import openai
import pytest
import soundfile
import srt
import webvtt

from tests.support.audio import goforward, librivox_clips, silence
from tests.support.fixtures_fleet import start_nginx
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import Proc

pytestmark = pytest.mark.integration

GOFORWARD_TEXT = "go forward ten meters"
MAX_BYTES = 3_000_000
MAX_DURATION_S = 60


def wav_bytes(pcm16: bytes, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fleet(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[dict[str, Proc]]:
    gateway = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        name="gw-files",
        env={
            "FILES__MAX_BYTES": str(MAX_BYTES),
            "FILES__MAX_DURATION_S": str(MAX_DURATION_S),
            "FILES__CHUNK_S": "8",
            "FILES__CUT_SEARCH_S": "3",
            "FILES__MAX_CONCURRENT": "1",
        },
    )
    nginx: Proc | None = None
    try:
        nginx = start_nginx([gateway.port], log_dir / "nginx-files", log_dir)
        yield {"gateway": gateway, "nginx": nginx}
    finally:
        if nginx is not None:
            nginx.stop()
        gateway.stop()


@pytest.fixture(scope="module")
def base_url(fleet: dict[str, Proc]) -> str:
    return f"http://127.0.0.1:{fleet['nginx'].port}/v1"


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def goforward_wav() -> tuple[str, bytes, str]:
    return ("goforward.wav", wav_bytes(goforward()), "audio/wav")


def test_json_and_text(client: openai.OpenAI, goforward_wav: tuple[str, bytes, str]) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=goforward_wav)
    assert result.text == GOFORWARD_TEXT
    text = client.audio.transcriptions.create(
        model="whisper-1", file=goforward_wav, response_format="text", language="en",
        prompt="ignored",
    )  # fmt: skip
    assert text.strip() == GOFORWARD_TEXT


def test_verbose_json_srt_and_vtt_agree_on_word_times(
    client: openai.OpenAI, goforward_wav: tuple[str, bytes, str]
) -> None:
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=goforward_wav,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.text == GOFORWARD_TEXT
    assert verbose.language == "english"
    assert verbose.duration == pytest.approx(2.786, abs=0.01)
    words = verbose.words or []
    assert [w.word for w in words] == GOFORWARD_TEXT.split()
    assert all(0 <= w.start < w.end <= verbose.duration for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    segments = verbose.segments or []
    assert [s.text for s in segments] == [GOFORWARD_TEXT]
    assert (segments[0].start, segments[0].end) == (words[0].start, words[-1].end)

    srt_text = client.audio.transcriptions.create(
        model="whisper-1", file=goforward_wav, response_format="srt"
    )
    cues = list(srt.parse(srt_text))
    assert [c.content for c in cues] == [GOFORWARD_TEXT]
    assert cues[0].start.total_seconds() == pytest.approx(words[0].start, abs=0.001)
    assert cues[0].end.total_seconds() == pytest.approx(words[-1].end, abs=0.001)

    vtt_text = client.audio.transcriptions.create(
        model="whisper-1", file=goforward_wav, response_format="vtt"
    )
    captions = webvtt.from_buffer(io.StringIO(vtt_text))
    assert [c.text for c in captions] == [GOFORWARD_TEXT]
    assert captions[0].start == srt.timedelta_to_srt_timestamp(cues[0].start).replace(",", ".")
    assert captions[0].end == srt.timedelta_to_srt_timestamp(cues[0].end).replace(",", ".")


def test_stream_sends_deltas_then_done(
    client: openai.OpenAI, goforward_wav: tuple[str, bytes, str]
) -> None:
    events = list(
        client.audio.transcriptions.create(model="whisper-1", file=goforward_wav, stream=True)
    )
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[0].delta == GOFORWARD_TEXT
    assert events[-1].text == GOFORWARD_TEXT


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", None), ("OGG", "VORBIS"), ("MP3", None)])
def test_flac_ogg_and_mp3(client: openai.OpenAI, fmt: str, subtype: str | None) -> None:
    samples = np.frombuffer(goforward(), dtype="<i2")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format=fmt, subtype=subtype)
    name = f"goforward.{fmt.lower()}"
    result = client.audio.transcriptions.create(model="whisper-1", file=(name, buffer.getvalue()))
    assert result.text == GOFORWARD_TEXT


def test_a_long_file_goes_in_chunks_cut_at_pauses(client: openai.OpenAI) -> None:
    clips = librivox_clips()
    audio = silence(500).join(pcm for _, pcm, _ in clips)  # about 26 s: several 8 s chunks
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("librivox.wav", wav_bytes(audio)),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert verbose.duration == pytest.approx(len(audio) / 32000, abs=0.01)
    words = verbose.words or []
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert starts[-1] > 20  # word times are offsets in the file, not in a chunk
    human = " ".join(text for _, _, text in clips)
    assert jiwer.wer(human, verbose.text) < 0.35  # PocketSphinx's usual error rate here
    # Streamed, each segment is a delta as soon as its chunk is recognised.
    events = list(
        client.audio.transcriptions.create(
            model="whisper-1", file=("librivox.wav", wav_bytes(audio)), stream=True
        )
    )
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 3
    assert "".join(deltas) == events[-1].text == verbose.text


def test_limits_and_bad_input_give_clear_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio" * 99))
    assert bad.value.code == "invalid_audio"

    too_long = wav_bytes(silence((MAX_DURATION_S + 1) * 1000, rate=8000), rate=8000)
    assert len(too_long) < MAX_BYTES
    with pytest.raises(openai.BadRequestError) as long_error:
        client.audio.transcriptions.create(model="whisper-1", file=("long.wav", too_long))
    assert long_error.value.code == "audio_too_long"
    assert f"limit is {MAX_DURATION_S} s" in str(long_error.value)

    too_big = wav_bytes(silence(MAX_BYTES // 32 + 1000))  # past NGINX's 1 MB default too
    with pytest.raises(openai.APIStatusError) as big:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", too_big))
    assert big.value.status_code == 413
    assert big.value.code == "file_too_large"

    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(
            model="whisper-1", file=("x.wav", wav_bytes(goforward())), response_format="srt",
            stream=True,
        )  # fmt: skip


def test_past_the_concurrency_limit_429_until_a_slot_frees(
    client: openai.OpenAI, goforward_wav: tuple[str, bytes, str]
) -> None:
    audio = silence(500).join(pcm for _, pcm, _ in librivox_clips())
    stream = client.audio.transcriptions.create(
        model="whisper-1", file=("librivox.wav", wav_bytes(audio)), stream=True
    )
    events = iter(stream)
    assert next(events).type == "transcript.text.delta"  # the one slot is taken
    with pytest.raises(openai.RateLimitError) as busy:
        client.audio.transcriptions.create(model="whisper-1", file=goforward_wav)
    assert busy.value.code == "too_many_requests"
    assert [e.type for e in events][-1] == "transcript.text.done"
    # The finished stream gave its slot back.
    assert client.audio.transcriptions.create(model="whisper-1", file=goforward_wav).text == (
        GOFORWARD_TEXT
    )


def test_an_upload_past_the_limit_is_refused_as_it_arrives(
    client: openai.OpenAI, fleet: dict[str, Proc]
) -> None:
    # By its Content-Length, before the gateway reads it.
    with pytest.raises(openai.APIStatusError) as big:
        client.audio.transcriptions.create(
            model="whisper-1", file=("big.wav", bytes(2 * MAX_BYTES))
        )
    assert (big.value.status_code, big.value.code) == (413, "file_too_large")

    # Chunked, with no length: counted as it arrives, refused once past the limit.
    boundary = "limit-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1"
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\";"
            f" filename=\"big.wav\"\r\n\r\n").encode()  # fmt: skip
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(2 * MAX_BYTES // 65536):
            sent += 65536
            yield bytes(65536)
        yield f"\r\n--{boundary}--\r\n".encode()

    connection = http.client.HTTPConnection("127.0.0.1", fleet["gateway"].port, timeout=30)
    try:
        # The gateway answers, and may close, before the client has sent everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request(
                "POST", "/v1/audio/transcriptions", body=body(), encode_chunked=True,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                         "Transfer-Encoding": "chunked"},
            )  # fmt: skip
        response = connection.getresponse()
        assert response.status == 413
        assert b"file_too_large" in response.read()
    finally:
        connection.close()
    assert sent < 2 * MAX_BYTES  # it did not wait for the whole body
