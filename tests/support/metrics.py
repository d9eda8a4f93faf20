"""Reading a gateway's /metrics (Prometheus text format) in tests."""

from __future__ import annotations

import http.client

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    """GET without following redirects: a 307 must show as a 307."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[str, float]:
    """Every sample as `name{label="value",...}` (labels sorted) -> value."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def metric_value(port: int, name: str) -> float:
    status, text = scrape(port)
    assert status == 200
    return samples(text).get(name, 0.0)
