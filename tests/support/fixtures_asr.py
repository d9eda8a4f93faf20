"""The CPU speech server (`python -m asr_cpu`) as real processes, one per engine per session.

Both fixtures yield a `Proc`; the gRPC target is f"127.0.0.1:{proc.port}". Readiness is
the standard gRPC health check answering SERVING, polled with a bound.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.processes import Proc, free_port, start

READY_TIMEOUT_S = 60.0  # PocketSphinx loads its model before reporting SERVING


def asr_health_serving(port: int) -> bool:
    """True when the server's health service answers SERVING."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def asr_argv(port: int, engine: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "asr_cpu",
        "--host", "127.0.0.1", "--port", str(port), "--engine", engine, *extra,
    ]  # fmt: skip


def start_asr(name: str, engine: str, log_dir: Path, *extra: str) -> Proc:
    """A speech server of a test's own (with `extra` flags); the test stops it."""
    port = free_port()
    return start(
        name,
        asr_argv(port, engine, *extra),
        log_dir,
        port=port,
        ready=lambda: asr_health_serving(port),
        ready_timeout=READY_TIMEOUT_S,
    )


def _run_asr(name: str, engine: str, log_dir: Path, *extra: str) -> Iterator[Proc]:
    proc = start_asr(name, engine, log_dir, *extra)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def asr_server(log_dir: Path) -> Iterator[Proc]:
    """The PocketSphinx engine (real recognition)."""
    yield from _run_asr("asr-cpu", "pocketsphinx", log_dir)


@pytest.fixture(scope="session")
def asr_synthetic_server(log_dir: Path) -> Iterator[Proc]:
    """The synthetic engine (no decoding; deterministic words every 2 s of audio)."""
    yield from _run_asr("asr-cpu-synthetic", "synthetic", log_dir)
