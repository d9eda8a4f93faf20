"""The CPU speech server over real gRPC, with Riva's own stubs, as the gateway uses it."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import wave
from pathlib import Path
from typing import Any

import grpc
import jiwer
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc
from riva.client.proto import riva_audio_pb2 as audio_pb

from tests.support.fixtures_asr import asr_argv, asr_health_serving
from tests.support.processes import Proc, free_port, running

pytestmark = pytest.mark.integration

DATA = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = DATA / "librivox"
RATE = 16000
FRAME_100MS = RATE // 10 * 2
FRAME_37MS = RATE * 37 // 1000 * 2
CALL_TIMEOUT_S = 60.0


def goforward() -> bytes:
    return (DATA / "goforward.raw").read_bytes()


def librivox_clips() -> list[tuple[bytes, str]]:
    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, utt = line.rpartition("(")
        refs[utt.strip(" )")] = text.replace("<s>", "").replace("</s>", "").strip()
    clips = []
    for path in sorted(LIBRIVOX.glob("*.wav")):
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
            clips.append((w.readframes(w.getnframes()), refs[path.stem]))
    return clips


def librivox_joined() -> bytes:
    """The five clips joined with 0.5 s of silence, as in DESIGN.md."""
    return (b"\0" * RATE).join(pcm for pcm, _ in librivox_clips())


def config(**overrides: Any) -> asr.RecognitionConfig:
    fields: dict[str, Any] = {
        "encoding": audio_pb.LINEAR_PCM,
        "sample_rate_hertz": RATE,
        "language_code": "en-US",
        "max_alternatives": 1,
        "audio_channel_count": 1,
    }
    fields.update(overrides)
    return asr.RecognitionConfig(**fields)


async def stream(
    target: str,
    audio: bytes,
    frame_bytes: int = FRAME_100MS,
    *,
    interim: bool = True,
    cfg: asr.RecognitionConfig | None = None,
) -> list[asr.StreamingRecognitionResult]:
    """Send `audio` as fast as the server takes it; return every result in order."""

    def requests() -> list[asr.StreamingRecognizeRequest]:
        head = asr.StreamingRecognizeRequest(
            streaming_config=asr.StreamingRecognitionConfig(
                config=cfg or config(), interim_results=interim
            )
        )
        return [
            head,
            *(
                asr.StreamingRecognizeRequest(audio_content=audio[i : i + frame_bytes])
                for i in range(0, len(audio), frame_bytes)
            ),
        ]

    async with grpc.aio.insecure_channel(target) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        call = stub.StreamingRecognize(timeout=CALL_TIMEOUT_S)

        async def send() -> None:
            # Write from our own task, as the gateway does: a server that ends the call
            # early (an error status) makes a write fail, and the status is read below.
            try:
                for request in requests():
                    await call.write(request)
                await call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                pass

        sender = asyncio.create_task(send())
        try:
            return [result async for response in call for result in response.results]
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)


def refused(target: str, requests: list[asr.StreamingRecognizeRequest]) -> grpc.RpcError:
    """Stream `requests` with the SYNCHRONOUS client and return the error it ends with.

    The asyncio client has a known race (grpc/grpc#36066): a write issued after the
    server ended the call early replaces the server's status with INTERNAL "Internal
    error from Core". The sync client reports the server's status, which is what these
    tests are about.
    """
    with grpc.insecure_channel(target) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        try:
            for _ in stub.StreamingRecognize(iter(requests), timeout=10):
                pass
        except grpc.RpcError as error:
            return error
    raise AssertionError("the server accepted the stream")


def finals(results: list[asr.StreamingRecognitionResult]) -> list[tuple[str, float]]:
    return [(r.alternatives[0].transcript, r.audio_processed) for r in results if r.is_final]


def target(proc: Proc) -> str:
    return f"127.0.0.1:{proc.port}"


@pytest.fixture(scope="module")
def librivox_run(asr_server: Proc) -> list[asr.StreamingRecognitionResult]:
    """The uninterrupted LibriVox stream in 100 ms frames, with interims (decoded once)."""
    return asyncio.run(stream(target(asr_server), librivox_joined()))


# --- health and configuration -------------------------------------------------------


@pytest.mark.parametrize("server", ["asr_server", "asr_synthetic_server"])
async def test_health_reports_serving(server: str, request: pytest.FixtureRequest) -> None:
    proc: Proc = request.getfixturevalue(server)
    async with grpc.aio.insecure_channel(target(proc)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "nvidia.riva.asr.RivaSpeechRecognition"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("server", "model"),
    [("asr_server", "pocketsphinx-en-US"), ("asr_synthetic_server", "synthetic")],
)
async def test_config_describes_the_one_model(
    server: str, model: str, request: pytest.FixtureRequest
) -> None:
    proc: Proc = request.getfixturevalue(server)
    async with grpc.aio.insecure_channel(target(proc)) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        reply = await stub.GetRivaSpeechRecognitionConfig(
            asr.RivaSpeechRecognitionConfigRequest(), timeout=5
        )
    [only] = reply.model_config
    assert only.model_name == model
    assert only.parameters["language_code"] == "en-US"
    assert only.parameters["streaming"] == "true"


# --- PocketSphinx: recognition -------------------------------------------------------


async def test_goforward_gives_interims_then_the_final(asr_server: Proc) -> None:
    results = await stream(
        target(asr_server),
        goforward(),
        cfg=config(enable_word_time_offsets=True, max_alternatives=3),
    )
    assert finals(results)[0][0] == "go forward ten meters"
    first_final = next(i for i, r in enumerate(results) if r.is_final)
    interims = results[:first_final]
    assert interims, "interims must arrive before the final"
    assert all(0 < r.stability < 1 and r.alternatives[0].transcript for r in interims)
    final = results[first_final]
    assert final.channel_tag == 0
    assert 2.0 < final.audio_processed <= len(goforward()) / 2 / RATE
    assert round(final.audio_processed * 1000) % 30 == 0, "final ends on a 30 ms frame"
    words = final.alternatives[0].words
    assert [w.word for w in words] == ["go", "forward", "ten", "meters"]
    assert all(0 <= w.start_time < w.end_time <= final.audio_processed * 1000 for w in words)
    assert [w.start_time for w in words] == sorted(w.start_time for w in words)
    assert 1 < len(final.alternatives) <= 3
    assert len({a.transcript for a in final.alternatives}) == len(final.alternatives)


def _sox(pcm: bytes, *out: str) -> bytes:
    """Convert 16 kHz mono PCM with sox (an independent G.711 encoder and resampler)."""
    argv = ["sox", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-",
            *out, "-"]  # fmt: skip
    return subprocess.run(argv, input=pcm, capture_output=True, check=True).stdout


@pytest.mark.parametrize(
    ("encoding", "rate", "sox_args", "max_wer"),
    [
        # Telephone band: the wideband en-US model hears "ten" as "and" (1 word in 4).
        (audio_pb.MULAW, 8000, ["-t", "raw", "-r", "8000", "-e", "mu-law", "-b", "8"], 0.25),
        (audio_pb.ALAW, 16000, ["-t", "raw", "-r", "16000", "-e", "a-law", "-b", "8"], 0.0),
        (audio_pb.LINEAR_PCM, 44100, ["-t", "raw", "-r", "44100", "-e", "signed", "-b", "16"], 0.0),
    ],
)
async def test_goforward_in_other_encodings_and_rates(
    asr_server: Proc, encoding: int, rate: int, sox_args: list[str], max_wer: float
) -> None:
    audio = _sox(goforward(), *sox_args)
    frame = rate // 10 * (2 if encoding == audio_pb.LINEAR_PCM else 1)
    results = await stream(
        target(asr_server), audio, frame, cfg=config(encoding=encoding, sample_rate_hertz=rate)
    )
    [(text, _)] = finals(results)
    print(f"{audio_pb.AudioEncoding.Name(encoding)} {rate} Hz: {text!r}")
    assert text.startswith("go forward")
    assert jiwer.wer("go forward ten meters", text) <= max_wer


@pytest.mark.parametrize("speech_channel", [0, 1])
async def test_stereo_separate_recognition_tags_each_channel(
    asr_server: Proc, speech_channel: int
) -> None:
    import numpy as np

    mono = np.frombuffer(goforward(), dtype="<i2")
    stereo = np.zeros((len(mono), 2), dtype="<i2")
    stereo[:, speech_channel] = mono
    cfg = config(audio_channel_count=2, enable_separate_recognition_per_channel=True)
    results = await stream(target(asr_server), stereo.tobytes(), FRAME_100MS * 2, cfg=cfg)
    assert [(r.channel_tag, r.alternatives[0].transcript) for r in results if r.is_final] == [
        (speech_channel, "go forward ten meters")
    ]


async def test_recognize_batch_gives_one_result_per_segment(asr_server: Proc) -> None:
    async with grpc.aio.insecure_channel(target(asr_server)) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        reply = await stub.Recognize(
            asr.RecognizeRequest(config=config(), audio=goforward()), timeout=CALL_TIMEOUT_S
        )
    assert [r.alternatives[0].transcript for r in reply.results] == ["go forward ten meters"]


# --- PocketSphinx: determinism, the basis of resume -----------------------------------


def test_librivox_finals_do_not_depend_on_frame_size(
    asr_server: Proc, librivox_run: list[asr.StreamingRecognitionResult]
) -> None:
    small_frames = asyncio.run(
        stream(target(asr_server), librivox_joined(), FRAME_37MS, interim=False)
    )
    assert finals(small_frames) == finals(librivox_run)
    assert len(finals(librivox_run)) == 5


def test_resuming_at_each_final_end_reproduces_the_later_finals(
    asr_server: Proc, librivox_run: list[asr.StreamingRecognitionResult]
) -> None:
    audio = librivox_joined()
    whole = [r for r in librivox_run if r.is_final]

    async def resume_everywhere() -> list[list[asr.StreamingRecognitionResult]]:
        runs = []
        for cut in whole[:-1]:
            # The contract: audio_processed of a final is a frame-aligned offset.
            offset = round(cut.audio_processed * RATE)
            runs.append(
                [r for r in await stream(target(asr_server), audio[offset * 2 :], interim=False)]
            )
        return runs

    for cut, resumed in zip(whole[:-1], asyncio.run(resume_everywhere()), strict=True):
        later = [r for r in whole if r.audio_processed > cut.audio_processed]
        assert [r.alternatives[0].transcript for r in resumed] == [
            r.alternatives[0].transcript for r in later
        ], f"resumed at {cut.audio_processed:.2f}s"
        assert [round(r.audio_processed + cut.audio_processed, 3) for r in resumed] == [
            round(r.audio_processed, 3) for r in later
        ]


def test_librivox_word_error_rate_per_clip(
    librivox_run: list[asr.StreamingRecognitionResult],
) -> None:
    hyps = [t for t, _ in finals(librivox_run)]
    refs = [ref for _, ref in librivox_clips()]
    assert len(hyps) == len(refs), hyps
    rates = [jiwer.wer(ref, hyp) for ref, hyp in zip(refs, hyps, strict=True)]
    for ref, hyp, rate in zip(refs, hyps, rates, strict=True):
        print(f"WER {rate:.3f}\n  ref: {ref}\n  hyp: {hyp}")
    print(f"mean per-clip WER {statistics.mean(rates):.3f} (DESIGN.md: about 0.31)")
    assert statistics.mean(rates) < 0.45


# --- validation ------------------------------------------------------------------------


def _config_request(**overrides: Any) -> asr.StreamingRecognizeRequest:
    return asr.StreamingRecognizeRequest(
        streaming_config=asr.StreamingRecognitionConfig(config=config(**overrides))
    )


@pytest.mark.parametrize(
    ("first", "audio", "message"),
    [
        ([], goforward(), "first request must carry streaming_config"),
        ([_config_request(encoding=audio_pb.FLAC)], b"", "FLAC is not supported by this server"),
        ([_config_request(encoding=audio_pb.OGGOPUS)], b"", "OGGOPUS is not supported"),
        ([_config_request(encoding=audio_pb.ENCODING_UNSPECIFIED)], b"", "encoding must be set"),
        ([_config_request(sample_rate_hertz=7999)], b"", "sample_rate_hertz 7999"),
        ([_config_request(sample_rate_hertz=48001)], b"", "sample_rate_hertz 48001"),
        ([_config_request(language_code="de-DE")], b"", "language_code 'de-DE'"),
        ([_config_request(audio_channel_count=3)], b"", "audio_channel_count 3"),
        ([_config_request(max_alternatives=11)], b"", "max_alternatives 11"),
        ([_config_request(model="parakeet")], b"", "model 'parakeet' is not available"),
        ([_config_request()], b"\0" * 3201, "not a whole number of 2-byte samples"),
        ([_config_request(), _config_request()], b"", "only be sent in the first request"),
        (
            [_config_request(endpointing_config=asr.EndpointingConfig(stop_history=30))],
            b"",
            "stop_history 30 ms is too short",
        ),
    ],
)
async def test_bad_requests_are_invalid_argument_with_a_clear_message(
    asr_server: Proc, first: list[asr.StreamingRecognizeRequest], audio: bytes, message: str
) -> None:
    requests = [*first, *(asr.StreamingRecognizeRequest(audio_content=audio[:3201]),) * 3]
    error = await asyncio.to_thread(refused, target(asr_server), requests)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (error.details() or "")


# --- synthetic engine ------------------------------------------------------------------


async def test_synthetic_finals_depend_only_on_audio_content(asr_synthetic_server: Proc) -> None:
    audio = librivox_joined()  # 26.73 s: 13 whole 2 s windows and a partial one
    server = target(asr_synthetic_server)
    cfg = config(enable_word_time_offsets=True)
    big = await stream(server, audio, FRAME_100MS, cfg=cfg)
    small = await stream(server, audio, FRAME_37MS, cfg=cfg)
    assert finals(big) == finals(small)
    assert [round(p, 3) for _, p in finals(big)] == [2.0 * k for k in range(1, 14)] + [26.73]
    interims = [r for r in big if not r.is_final]
    assert len(interims) == 13 * 9 + 3  # every 200 ms of audio, none where a final falls
    last = [r for r in big if r.is_final][-1]
    assert last.alternatives[0].words[-1].end_time <= 26730
    # Resume at the end of the third final: the later finals are the same.
    cut = 3 * 2 * RATE * 2
    resumed = await stream(server, audio[cut:], FRAME_37MS, cfg=cfg)
    assert [t for t, _ in finals(resumed)] == [t for t, _ in finals(big)[3:]]


async def test_synthetic_recognize_matches_streaming(asr_synthetic_server: Proc) -> None:
    audio = goforward()
    streamed = await stream(target(asr_synthetic_server), audio, interim=False)
    async with grpc.aio.insecure_channel(target(asr_synthetic_server)) as channel:
        reply = await asr_grpc.RivaSpeechRecognitionStub(channel).Recognize(
            asr.RecognizeRequest(config=config(), audio=audio), timeout=10
        )
    assert [(r.alternatives[0].transcript, r.audio_processed) for r in reply.results] == finals(
        streamed
    )


# --- capacity and shutdown --------------------------------------------------------------


async def test_streams_beyond_max_streams_are_resource_exhausted_and_sigterm_stops(
    log_dir: Path,
) -> None:
    port = free_port()
    argv = asr_argv(port, "synthetic", "--max-streams", "1")
    with running(
        "asr-cpu-capacity", argv, log_dir, port=port, ready=lambda: asr_health_serving(port)
    ) as proc:
        async with grpc.aio.insecure_channel(target(proc)) as channel:
            stub = asr_grpc.RivaSpeechRecognitionStub(channel)
            held: asyncio.Queue[asr.StreamingRecognizeRequest | None] = asyncio.Queue()
            await held.put(
                asr.StreamingRecognizeRequest(
                    streaming_config=asr.StreamingRecognitionConfig(
                        config=config(), interim_results=True
                    )
                )
            )

            async def hold() -> Any:
                while (request := await held.get()) is not None:
                    yield request

            first = stub.StreamingRecognize(hold(), timeout=10)
            responses = aiter(first)
            await held.put(asr.StreamingRecognizeRequest(audio_content=b"\0" * FRAME_100MS * 3))
            assert (await anext(responses)).results  # the first stream is open and answering
            error = await asyncio.to_thread(refused, target(proc), [_config_request()])
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            await held.put(None)
            assert [r async for r in responses][-1].results[0].is_final  # half-close: a final
            assert await first.code() == grpc.StatusCode.OK
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.popen.wait(10) == 0
