"""`make bench`: the gateway's CPU, memory and latency per stream, against a bare relay and
the speech server called directly, at several loads. See bench/README.md."""
