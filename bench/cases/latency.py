"""p50 and p99 through Envoy at a fixed 1,000 req/s (hey), per mode; round-robin, each row
the median of its rounds."""

from __future__ import annotations

from bench import loaders
from bench.recorder import Recorder
from bench.stack import Stack

ROWS = (("latency_noauth", "noauth"), ("latency_grpc", "sidecar_grpc"), ("latency_http", "sidecar_http"),
        ("latency_floor_grpc", "floor_grpc"), ("latency_floor_http", "floor_http"))


def run(rec: Recorder, stack: Stack) -> None:
    for _ in range(rec.long_rounds):
        for row, listener in ROWS:
            if rec.want(row):
                with rec.failing(row, "ms p99"):
                    rec.record_latency(row, *loaders.hey_latency(stack.url[listener], rec.d, 1000,
                                                                 headers=stack.auth))
