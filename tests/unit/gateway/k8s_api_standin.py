"""A STAND-IN for the Kubernetes API server (no API server can run on these machines):
a local HTTP server on 127.0.0.1 that serves exactly what the gateway's EndpointSlice
watcher asks for, in the wire format of the real one:

    GET /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices?labelSelector=...
        -> an EndpointSliceList of the slices whose service-name label matches
    GET the same with watch=true
        -> a chunked stream of watch events, one JSON object per line, as the test
           publishes them; the stream ends at timeoutSeconds or when the server stops.

The real `kubernetes` client talks to it as it would to an API server."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

PATH = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"


def endpoint_slice(
    name: str,
    service: str,
    endpoints: list[tuple[str, bool | None, bool]],
    *,
    port: int,
    port_name: str = "grpc",
    address_type: str = "IPv4",
) -> dict[str, Any]:
    """An EndpointSlice: `endpoints` are (address, ready, terminating)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "speech",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": address_type,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {
                    **({} if ready is None else {"ready": ready}),
                    "serving": True,
                    "terminating": terminating,
                },
            }
            for address, ready, terminating in endpoints
        ],
    }


class K8sApiStandIn:
    """The stand-in server: `slices` is what a list returns, `publish` feeds watchers."""

    def __init__(self, namespace: str = "speech") -> None:
        self.namespace = namespace
        self.slices: dict[str, dict[str, Any]] = {}
        self.version = 1
        self.lists = 0
        self.watches = 0
        self._watchers: list[queue.Queue[dict[str, Any] | None]] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                standin._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> K8sApiStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for watcher in self._watchers:
                watcher.put(None)
        self._server.shutdown()
        self._server.server_close()

    def end_watches(self) -> None:
        """End every open watch stream, as an API server does at its timeout or restart."""
        with self._lock:
            for watcher in self._watchers:
                watcher.put(None)

    def expire_watches(self) -> None:
        """Send every open watch a 410 Gone ERROR event, as an API server does when the
        watched resourceVersion is too old."""
        gone = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"labels": {}},
            "status": "Failure",
            "message": "too old resource version",
            "reason": "Expired",
            "code": 410,
        }
        with self._lock:
            for watcher in self._watchers:
                watcher.put({"type": "ERROR", "object": gone})

    def publish(self, kind: str, obj: dict[str, Any]) -> None:
        """Apply an ADDED, MODIFIED or DELETED event and send it to every open watch."""
        with self._lock:
            self.version += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
            if kind == "DELETED":
                self.slices.pop(obj["metadata"]["name"], None)
            else:
                self.slices[obj["metadata"]["name"]] = obj
            for watcher in self._watchers:
                watcher.put({"type": kind, "object": obj})

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        if url.path != PATH.format(namespace=self.namespace):
            handler.send_error(404)
            return
        selector = query.get("labelSelector", [""])[0]
        key, _, value = selector.partition("=")
        if query.get("watch", ["false"])[0].lower() == "true":
            self._watch(handler, key, value, float(query.get("timeoutSeconds", ["60"])[0]))
            return
        with self._lock:
            self.lists += 1
            items = [s for s in self.slices.values() if s["metadata"]["labels"].get(key) == value]
            body = json.dumps(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSliceList",
                    "metadata": {"resourceVersion": str(self.version)},
                    "items": items,
                }
            ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _watch(self, handler: BaseHTTPRequestHandler, key: str, value: str, timeout: float) -> None:
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with self._lock:
            self.watches += 1
            self._watchers.append(events)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            while True:
                try:
                    event = events.get(timeout=timeout)
                except queue.Empty:
                    break
                if event is None:
                    break
                labels = event["object"]["metadata"]["labels"]
                if event["type"] != "ERROR" and labels.get(key) != value:
                    continue
                line = json.dumps(event).encode() + b"\n"
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            pass  # the client went away
        finally:
            with self._lock:
                self._watchers.remove(events)
