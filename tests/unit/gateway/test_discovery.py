"""Riva endpoint discovery through the real `kubernetes` client, against a STAND-IN for the
Kubernetes API server (tests/unit/gateway/k8s_api_standin.py: a local HTTP server serving
the EndpointSlice list and watch API; no API server can run here).

"Pod addresses" are loopback addresses (127.0.0.2, ...) on a port nothing listens on: a
stream placed on one is a real gRPC call that fails at once, never traffic elsewhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from kubernetes import client as k8s

from gateway.backends.discovery import (
    NO_READY_ENDPOINT,
    Discovery,
    EndpointSliceWatcher,
    ready_targets,
    start_discovery,
)
from gateway.backends.riva import RivaBackend
from gateway.config import RivaSettings
from tests.support.processes import free_port, poll_until
from tests.unit.gateway.k8s_api_standin import K8sApiStandIn, endpoint_slice

SERVICE = "rel-speech-fleet-riva-nim"
PORT = free_port()
A, B, C = (f"127.0.0.{n}" for n in (2, 3, 4))


Fleet = tuple[K8sApiStandIn, RivaBackend, Discovery]


def target(address: str) -> str:
    return f"{address}:{PORT}"


async def until(check: Callable[[], bool], what: str) -> None:
    # Bounded polling that yields to the event loop (the watcher's changes arrive on it).
    deadline = time.monotonic() + 5.0
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def targets_of(backend: RivaBackend) -> list[str]:
    return [e.target for e in backend.balancer.endpoints]


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    with K8sApiStandIn() as api:
        api.publish(
            "ADDED",
            endpoint_slice("riva-1", SERVICE, [(A, True, False), (B, False, False)], port=PORT),
        )
        # Another Service's slice in the same namespace: never used.
        api.publish("ADDED", endpoint_slice("other-1", "other", [(C, True, False)], port=PORT))
        settings = RivaSettings(
            targets=["127.0.0.1:1"],
            discovery={"service": SERVICE, "namespace": "speech"},
        )
        backend = RivaBackend(settings)
        client = k8s.ApiClient(k8s.Configuration(host=api.url))
        discovery = start_discovery(settings, backend, client)
        assert discovery is not None
        try:
            await until(lambda: targets_of(backend) == [target(A)], "the first listing")
            yield api, backend, discovery
        finally:
            await discovery.close()
            await backend.close()
            client.close()


def place_streams(backend: RivaBackend, count: int) -> list[str]:
    """Start `count` real StreamingRecognize calls through the backend, as sessions do;
    returns where each landed (then cancels and releases them)."""
    placed = []
    for _ in range(count):
        endpoint, call = backend.open_stream()
        placed.append(endpoint.target)
        call.cancel()
        backend.release(endpoint)
    return placed


async def test_only_ready_endpoints_of_the_service_are_used(fleet: Fleet) -> None:
    api, backend, _ = fleet
    assert api.lists == 1
    assert set(place_streams(backend, 5)) == {target(A)}


async def test_stream_never_lands_on_an_endpoint_once_it_is_not_ready(fleet: Fleet) -> None:
    api, backend, _ = fleet
    # A starts terminating (ready false) and B becomes ready: one watch event.
    api.publish(
        "MODIFIED",
        endpoint_slice("riva-1", SERVICE, [(A, False, True), (B, True, False)], port=PORT),
    )
    await until(lambda: targets_of(backend) == [target(B)], "A to leave")
    assert target(A) not in place_streams(backend, 10)
    assert api.lists == 1, "followed by the watch, without listing again"


async def test_an_added_endpoint_is_used_without_a_restart(fleet: Fleet) -> None:
    api, backend, _ = fleet
    busy, call = backend.open_stream()  # A carries a stream
    api.publish("ADDED", endpoint_slice("riva-2", SERVICE, [(C, True, False)], port=PORT))
    await until(lambda: target(C) in targets_of(backend), "C to arrive")
    # The fewest-streams rule sends the next stream to the new, idle endpoint.
    assert place_streams(backend, 1) == [target(C)]
    call.cancel()
    backend.release(busy)


async def test_a_removed_endpoint_keeps_its_channel_until_its_streams_end(
    fleet: Fleet,
) -> None:
    api, backend, _ = fleet
    endpoint, call = backend.open_stream()
    assert endpoint.target == target(A)
    api.publish("DELETED", endpoint_slice("riva-1", SERVICE, [], port=PORT))
    await until(lambda: targets_of(backend) == [NO_READY_ENDPOINT], "every endpoint to go")
    # Left the list, but the stream on it is not cut: it ends (or fails over) by itself.
    assert endpoint.client.channel.get_state() != grpc.ChannelConnectivity.SHUTDOWN
    call.cancel()
    backend.release(endpoint)
    # Once idle, the next change closes its channel.
    api.publish("ADDED", endpoint_slice("riva-2", SERVICE, [(C, True, False)], port=PORT))
    await until(
        lambda: endpoint.client.channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN,
        "the idle channel to close",
    )


async def test_no_ready_endpoint_refuses_streams_and_fails_health(fleet: Fleet) -> None:
    api, backend, _ = fleet
    api.publish("MODIFIED", endpoint_slice("riva-1", SERVICE, [(A, False, True)], port=PORT))
    await until(lambda: targets_of(backend) == [NO_READY_ENDPOINT], "no endpoint ready")
    assert await backend.healthy(timeout_s=1.0) is False
    endpoint, call = backend.open_stream()
    assert endpoint.target == NO_READY_ENDPOINT
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call.read()
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    backend.release(endpoint)
    # A ready endpoint comes back: used at once.
    api.publish("MODIFIED", endpoint_slice("riva-1", SERVICE, [(B, True, False)], port=PORT))
    await until(lambda: targets_of(backend) == [target(B)], "B to be ready")


async def test_an_ended_watch_lists_again_and_catches_up(fleet: Fleet) -> None:
    api, backend, _ = fleet
    api.end_watches()
    await until(lambda: api.watches == 2, "the second watch")
    assert api.lists == 2
    api.publish("ADDED", endpoint_slice("riva-2", SERVICE, [(C, True, False)], port=PORT))
    await until(lambda: targets_of(backend) == [target(A), target(C)], "C through the new watch")


def test_watch_expired_with_410_lists_again() -> None:
    with K8sApiStandIn() as api:
        api.publish("ADDED", endpoint_slice("riva-1", SERVICE, [(A, True, False)], port=PORT))
        seen: list[list[str]] = []
        client = k8s.ApiClient(k8s.Configuration(host=api.url))
        watcher = EndpointSliceWatcher(
            k8s.DiscoveryV1Api(client), "speech", SERVICE, "grpc", seen.append, retry_s=0.05
        )
        watcher.start()
        try:
            poll_until(lambda: api.watches == 1, 5, "the first watch")
            api.expire_watches()
            poll_until(lambda: api.lists == 2, 5, "a new listing after 410 Gone")
            poll_until(lambda: api.watches == 2, 5, "a new watch")
            api.publish("ADDED", endpoint_slice("riva-2", SERVICE, [(B, True, False)], port=PORT))
            poll_until(lambda: seen[-1] == [target(A), target(B)], 5, "B after the relist")
        finally:
            watcher.stop()
            client.close()


def test_ready_targets_reads_conditions_ports_and_families() -> None:
    slices = [
        endpoint_slice("a", SERVICE, [("127.0.0.5", None, False)], port=50051),
        endpoint_slice("b", SERVICE, [("127.0.0.6", False, True)], port=50051),
        endpoint_slice("c", SERVICE, [("::1", True, False)], port=50051, address_type="IPv6"),
        endpoint_slice("d", SERVICE, [("127.0.0.7", True, False)], port=9000, port_name="http"),
    ]
    # d has only a port of another name: its only port is taken, as a Service with one port.
    models = [k8s.V1EndpointSlice.from_dict(s) for s in slices]
    assert ready_targets(models, "grpc") == [
        "127.0.0.5:50051",
        "127.0.0.7:9000",
        "[::1]:50051",
    ]
