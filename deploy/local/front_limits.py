"""The front's per-client-address limits and timeouts, as the NGINX template's placeholders.

Two sets: `PRODUCTION`, the protective defaults (the chart's values and the Compose file
carry the same numbers), and `LOOPBACK`, for the local fleet, the tests and the
benchmarks, whose clients all connect from 127.0.0.1 and would otherwise be one
"address" flooding the front. docs/front.md explains each number.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

# The limits NGINX accepts: limit_conn's number is at most 65535.
_MAX_CONNECTIONS = 65535
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")


@dataclass(frozen=True)
class FrontLimits:
    """Per client address: requests (each WebSocket handshake is one) per second with a
    burst served at once, and connections being served at once (an open WebSocket
    counts for its whole life); the timeouts that close idle or stalled sockets before
    the upgrade; and the load balancer trusted to name the client's address."""

    requests_per_second: int = 20
    # Requests above the rate served at once (`nodelay`): a page load (about 6), or every
    # session of one back-end reconnecting together after a drain.
    request_burst: int = 200
    connections_per_address: int = 200
    # A connection that sends no complete request header this long is closed.
    client_header_timeout_s: int = 10
    # Between two reads of a request body (file uploads), and two writes of an answer.
    client_body_timeout_s: int = 30
    send_timeout_s: int = 30
    # An idle keep-alive connection between requests.
    keepalive_timeout_s: int = 30
    # Addresses or CIDRs of the load balancers whose `real_ip_header` names the client;
    # empty: the connecting address is the client's (nothing trusted).
    real_ip_from: tuple[str, ...] = ()
    real_ip_header: str = "X-Forwarded-For"

    def __post_init__(self) -> None:
        for name in ("requests_per_second", "request_burst", "connections_per_address"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.connections_per_address > _MAX_CONNECTIONS:
            raise ValueError(f"connections_per_address must be at most {_MAX_CONNECTIONS}")
        for name in ("client_header_timeout_s", "client_body_timeout_s", "send_timeout_s"):
            if not 1 <= getattr(self, name) <= 3600:
                raise ValueError(f"{name} must be 1 to 3600 seconds")
        if not 0 <= self.keepalive_timeout_s <= 3600:
            raise ValueError("keepalive_timeout_s must be 0 to 3600 seconds")
        for source in self.real_ip_from:
            # Raises ValueError for anything but an address or a network.
            ipaddress.ip_network(source, strict=False)
        if not _HEADER.fullmatch(self.real_ip_header):
            raise ValueError(f"real_ip_header {self.real_ip_header!r} is not a header name")

    def placeholders(self) -> dict[str, str]:
        """The template's placeholders these limits fill."""
        return {
            "requests_per_second": str(self.requests_per_second),
            "request_burst": str(self.request_burst),
            "connections_per_address": str(self.connections_per_address),
            "client_header_timeout_s": str(self.client_header_timeout_s),
            "client_body_timeout_s": str(self.client_body_timeout_s),
            "send_timeout_s": str(self.send_timeout_s),
            "keepalive_timeout_s": str(self.keepalive_timeout_s),
            "real_ip_directives": real_ip_directives(self.real_ip_from, self.real_ip_header),
        }


def real_ip_directives(sources: tuple[str, ...], header: str) -> str:
    """One line: a `set_real_ip_from` per trusted source, the header, and recursion (the
    right-most untrusted address of X-Forwarded-For is the client); a comment when none.
    The chart's templates/front/configmap.yaml writes the same line."""
    if not sources:
        return "# No trusted load balancer: the connecting address is the client's."
    trusted = " ".join(f"set_real_ip_from {source};" for source in sources)
    return f"{trusted} real_ip_header {header}; real_ip_recursive on;"


PRODUCTION = FrontLimits()
# Every client of the local fleet, the tests and the benchmarks is 127.0.0.1: the rate
# and connection limits are far above anything they drive (the timeouts stay).
LOOPBACK = replace(
    PRODUCTION,
    requests_per_second=100_000,
    request_burst=100_000,
    connections_per_address=_MAX_CONNECTIONS,
)
