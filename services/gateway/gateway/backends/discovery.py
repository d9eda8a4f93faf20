"""Riva endpoints from the EndpointSlices of a Kubernetes Service, kept current by a watch.

In a cluster the Riva pods come and go (a rollout, a GPU node drained, the NIM scaled): a
static `RIVA__TARGETS` list, or the addresses of a headless Service resolved once, goes
stale. With `RIVA__DISCOVERY__SERVICE` set, each gateway process lists and then watches the
EndpointSlices of that Service with the `kubernetes` client, in a thread of its own (the
client is blocking; the event loop never waits on the API server), and hands each new set of
ready addresses to the event loop, which swaps the balancer's endpoint list in one step:

- a stream is never placed on an endpoint that is not ready (not ready, or terminating:
  `conditions.ready` false), since such an endpoint leaves the list at once;
- an endpoint that becomes ready is used by the next stream, without a restart;
- streams already on an endpoint that left the list go on; if its pod goes away they fail
  over as with a static list (the session replays its audio elsewhere). Its channel is
  closed once its last stream is released;
- when no endpoint is ready, the list holds one placeholder that refuses every stream at
  once with UNAVAILABLE, which sessions turn into a retryable `backend_unavailable`, and
  readiness fails, exactly as when every static endpoint is down.

One watch per gateway process (gunicorn worker): each process has its own balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from gateway.backends.balancer import Endpoint
from gateway.backends.riva import RivaBackend, RivaClient
from gateway.config import RivaSettings

log = logging.getLogger(__name__)

# Stands in for "no endpoint ready": a Unix socket path that cannot exist, so a stream or a
# health check on it fails at once with UNAVAILABLE.
NO_READY_ENDPOINT = "unix:/nonexistent/speech-gateway/no-ready-riva-endpoint"
_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def ready_targets(slices: Iterable[Any], port_name: str) -> list[str]:
    """The `host:port` of every ready endpoint of `slices` (V1EndpointSlice objects), on
    the port named `port_name` (or the only port), sorted and without duplicates."""
    targets: set[str] = set()
    for endpoint_slice in slices:
        ports = endpoint_slice.ports or []
        port = next((p.port for p in ports if p.name == port_name), None)
        if port is None and len(ports) == 1:
            port = ports[0].port
        if port is None:
            continue
        ipv6 = endpoint_slice.address_type == "IPv6"
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            # The API: an unknown (null) `ready` is to be read as ready; terminating
            # endpoints report ready false.
            if conditions is not None and conditions.ready is False:
                continue
            for address in endpoint.addresses or []:
                targets.add(f"[{address}]:{port}" if ipv6 else f"{address}:{port}")
    return sorted(targets)


class EndpointSliceWatcher:
    """Lists, then watches, the EndpointSlices of one Service in a daemon thread, and calls
    `on_change(targets)` from that thread with the ready targets after every change."""

    def __init__(
        self,
        api: k8s.DiscoveryV1Api,
        namespace: str,
        service: str,
        port_name: str,
        on_change: Callable[[list[str]], None],
        *,
        watch_timeout_s: int = 240,
        retry_s: float = 2.0,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._selector = f"kubernetes.io/service-name={service}"
        self._port_name = port_name
        self._on_change = on_change
        self._watch_timeout_s = watch_timeout_s
        self._retry_s = retry_s
        self._stopping = threading.Event()
        self._watch: k8s_watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name="riva-discovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does at the next event or watch timeout (it is a
        daemon thread, so it never holds the process up)."""
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._list_then_watch()
            except Exception as exc:  # the API server away, 410 Gone (ApiException), a bad reply
                if self._stopping.is_set():
                    return
                log.warning("riva discovery: %s; listing again in %.0f s", exc, self._retry_s)
                self._stopping.wait(self._retry_s)

    def _list_then_watch(self) -> None:
        listing = self._api.list_namespaced_endpoint_slice(
            self._namespace, label_selector=self._selector
        )
        slices = {_name(s): s for s in listing.items}
        last = ready_targets(slices.values(), self._port_name)
        self._on_change(last)
        self._watch = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        version = listing.metadata.resource_version if listing.metadata else None
        for event in self._watch.stream(  # type: ignore[no-untyped-call]
            self._api.list_namespaced_endpoint_slice,
            self._namespace,
            label_selector=self._selector,
            resource_version=version,
            timeout_seconds=self._watch_timeout_s,
        ):
            if self._stopping.is_set():
                return
            # ERROR events (410 Gone and the like) are raised by the client itself.
            kind, endpoint_slice = event["type"], event["object"]
            if kind == "DELETED":
                slices.pop(_name(endpoint_slice), None)
            elif kind in ("ADDED", "MODIFIED"):
                slices[_name(endpoint_slice)] = endpoint_slice
            targets = ready_targets(slices.values(), self._port_name)
            if targets != last:
                last = targets
                self._on_change(targets)


def _name(endpoint_slice: Any) -> str:
    return str(endpoint_slice.metadata.name) if endpoint_slice.metadata else ""


class DiscoveredEndpoints:
    """Applies discovered targets to a RivaBackend's balancer, on the event loop."""

    def __init__(self, backend: RivaBackend, make_client: Callable[[str], RivaClient]) -> None:
        self._backend = backend
        self._make_client = make_client
        self._retired: dict[str, Endpoint[RivaClient]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def apply(self, targets: Sequence[str]) -> None:
        """Make `targets` the balancer's endpoints (the placeholder if there are none)."""
        balancer = self._backend.balancer
        known = {**self._retired, **{e.target: e for e in balancer.endpoints}}
        wanted = list(targets) or [NO_READY_ENDPOINT]
        balancer.endpoints = [
            known.pop(t) if t in known else Endpoint(t, self._make_client(t)) for t in wanted
        ]
        self._retired = known
        log.info("riva endpoints: %s", ",".join(targets) or "none ready")
        self.close_idle()

    def close_idle(self) -> None:
        """Close the channels of retired endpoints that carry no stream any more."""
        for target, endpoint in list(self._retired.items()):
            if endpoint.active <= 0:
                del self._retired[target]
                task = asyncio.ensure_future(endpoint.client.channel.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every retired channel (the balancer's own are closed by the backend)."""
        for endpoint in self._retired.values():
            await endpoint.client.channel.close()
        self._retired.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)


class Discovery:
    """The watcher and what it feeds, owned by the app's lifespan."""

    def __init__(self, watcher: EndpointSliceWatcher, endpoints: DiscoveredEndpoints) -> None:
        self.watcher = watcher
        self.endpoints = endpoints

    async def close(self) -> None:
        self.watcher.stop()
        await self.endpoints.close()


def start_discovery(
    settings: RivaSettings, backend: RivaBackend, api_client: k8s.ApiClient | None = None
) -> Discovery | None:
    """Start watching `settings.discovery.service` when it is set (None otherwise).
    In a pod the client reads the ServiceAccount's token and the pod's namespace."""
    discovery = settings.discovery
    if not discovery.service:
        return None
    if api_client is None:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        api_client = k8s.ApiClient()
    namespace = discovery.namespace
    if not namespace:
        with contextlib.suppress(OSError):
            namespace = _NAMESPACE_FILE.read_text().strip()
    if not namespace:
        raise ValueError("RIVA__DISCOVERY__NAMESPACE is not set and this is not a pod")
    loop = asyncio.get_running_loop()
    endpoints = DiscoveredEndpoints(backend, lambda target: RivaClient(target, settings))

    def on_change(targets: list[str]) -> None:
        # From the watcher's thread: the balancer is only ever touched on the loop.
        loop.call_soon_threadsafe(endpoints.apply, targets)

    watcher = EndpointSliceWatcher(
        k8s.DiscoveryV1Api(api_client), namespace, discovery.service, discovery.port_name, on_change
    )
    watcher.start()
    return Discovery(watcher, endpoints)
