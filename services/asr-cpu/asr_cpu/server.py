"""The gRPC server: Riva ASR service plus the standard health service, stopped cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from asr_cpu import metrics, tracing
from asr_cpu.engines import create_engine
from asr_cpu.servicer import RivaAsrServicer
from asr_cpu.settings import Settings

log = logging.getLogger("asr_cpu")
RIVA_SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"
SHUTDOWN_GRACE_S = 5.0


async def serve(settings: Settings) -> None:
    tracing.configure_from_env()
    executor = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="decode")
    try:
        loop = asyncio.get_running_loop()
        # Loading the model takes a while: do it before reporting SERVING.
        engine = await loop.run_in_executor(executor, create_engine, settings)
        options: list[tuple[str, int]] = [
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared port
        ]
        if settings.min_ping_interval_ms:
            options.append(
                ("grpc.http2.min_recv_ping_interval_without_data_ms", settings.min_ping_interval_ms)
            )
        server = grpc.aio.server(options=options)
        asr_grpc.add_RivaSpeechRecognitionServicer_to_server(
            RivaAsrServicer(engine, executor, settings.max_streams, settings.idle_release_s),
            server,
        )
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        port = server.add_insecure_port(f"{settings.host}:{settings.port}")
        await server.start()
        if settings.metrics_port is not None:
            metrics.STREAMS_LIMIT.set(settings.max_streams)
            metrics.serve_metrics(settings.host, settings.metrics_port)
        for service in ("", RIVA_SERVICE):
            await health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving %s on %s:%d (decode workers %d, max streams %d)",
            engine.model_name, settings.host, port, settings.decode_workers,
            settings.max_streams,
        )  # fmt: skip

        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping: NOT_SERVING, letting streams finish for up to %.0fs", SHUTDOWN_GRACE_S)
        await health.enter_graceful_shutdown()
        await server.stop(SHUTDOWN_GRACE_S)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    log.info("stopped")
