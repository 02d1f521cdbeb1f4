"""ext_authz metrics. Counted in plain ints on the hot path, turned into Prometheus
samples only when scraped (prometheus_client's own counters take a lock per increment)."""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class AuthzMetrics(Collector):
    def __init__(self) -> None:
        self.decisions: dict[tuple[str, bool, str], int] = {}  # (mode, allowed, reason) → count
        self.cache_hits = 0
        self.cache_misses = 0
        self.jwks_fetches = 0
        self.jwks_failures = 0
        self.unknown_kid = 0
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0

    def decision(self, mode: str, allowed: bool, reason: str, seconds: float) -> None:
        key = (mode, allowed, reason)  # a plain dict: a Counter's += costs a third more per Check
        self.decisions[key] = self.decisions.get(key, 0) + 1
        self._buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    def jwks_fetch(self, ok: bool) -> None:
        self.jwks_fetches += 1
        if not ok:
            self.jwks_failures += 1

    def collect(self) -> Iterator:
        dec = CounterMetricFamily("auth_sidecar_authz_decisions", "ext_authz decisions",
                                  labels=["mode", "result", "reason"])
        for (mode, allowed, reason), count in sorted(self.decisions.items()):
            dec.add_metric([mode, "allow" if allowed else "deny", reason], count)
        yield dec
        cache = CounterMetricFamily("auth_sidecar_authz_cache", "token cache lookups", labels=["result"])
        cache.add_metric(["hit"], self.cache_hits)
        cache.add_metric(["miss"], self.cache_misses)
        yield cache
        jwks = CounterMetricFamily("auth_sidecar_jwks_fetches", "JWKS fetches", labels=["result"])
        jwks.add_metric(["ok"], self.jwks_fetches - self.jwks_failures)
        jwks.add_metric(["error"], self.jwks_failures)
        yield jwks
        kid = CounterMetricFamily("auth_sidecar_authz_unknown_kid", "tokens with an unknown kid")
        kid.add_metric([], self.unknown_kid)
        yield kid
        hist = HistogramMetricFamily("auth_sidecar_authz_check_seconds", "time to decide one Check")
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._buckets):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        hist.add_metric([], buckets, self._latency_sum)
        yield hist
