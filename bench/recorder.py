"""The run's options and its results: one row per measured quantity; with --repeat a row's
value is the median of its samples."""

from __future__ import annotations

import contextlib
import statistics
from typing import Callable, Iterator


class Recorder:
    def __init__(self, duration: float, warmup: float, quick: bool, only: set[str] | None, repeat: int = 1) -> None:
        self.d, self.w, self.quick, self.only, self.repeat = duration, warmup, quick, only, repeat
        self.results: dict[str, dict] = {}
        self.samples: dict[str, list] = {}

    @property
    def long_rounds(self) -> int:
        """Rounds of the rows one hiccup of a shared 2-core host moves most: a p99 is the 50
        slowest of 5,000 requests, a password round ~350 logins, an h2load pair two loaders'
        share of the same cores. With --repeat, at least 5."""
        return max(self.repeat, 5) if self.repeat > 1 else 1

    def want(self, row: str) -> bool:
        return self.only is None or row in self.only

    def ok(self, row: str) -> bool:
        return row in self.results and "error" not in self.results[row]

    def record(self, row: str, value: float, unit: str, **extra) -> None:
        """One sample of a row."""
        samples = self.samples.setdefault(row, [])
        samples.append(round(value, 2))
        self.results[row] = {"value": statistics.median(samples), "unit": unit, **extra}
        if len(samples) > 1:
            self.results[row]["samples"] = samples
        print(f"  {row:34s} {value:12.1f} {unit}", flush=True)

    def record_latency(self, row: str, p50: float, p99: float) -> None:
        samples = self.samples.setdefault(row, [])
        samples.append((p50, p99))
        p50_median = statistics.median(s[0] for s in samples)
        p99_median = statistics.median(s[1] for s in samples)
        self.results[row] = {"value": p99_median, "unit": "ms p99", "p50_ms": p50_median, "p99_ms": p99_median}
        if len(samples) > 1:
            self.results[row]["samples"] = samples
        print(f"  {row:34s} p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)

    @contextlib.contextmanager
    def failing(self, row: str, unit: str) -> Iterator[None]:
        """A case that fails leaves its row with no value and the error, and the run goes on."""
        try:
            yield
        except Exception as exc:
            self.results[row] = {"value": None, "unit": unit, "error": str(exc)[:500]}
            print(f"  {row:34s} FAILED: {str(exc)[:200]}", flush=True)

    def measure(self, row: str, fn: Callable[[float], float], unit: str = "req/s") -> None:
        """`fn(seconds)` run once to warm up (rates only), then timed."""
        if not self.want(row):
            return
        with self.failing(row, unit):
            if self.w and unit == "req/s":
                fn(self.w)
            self.record(row, fn(self.d), unit)
