"""A store wrapper that records each call's latency (the token service's store metric)."""

from __future__ import annotations

import inspect
import time
from typing import Any


class TimedStore:
    def __init__(self, store: Any, histogram: Any) -> None:
        self._store = store
        self._histogram = histogram

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        observe = self._histogram.labels(name).observe

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                observe(time.perf_counter() - started)
        setattr(self, name, timed)  # built once per method: __getattr__ is not asked again
        return timed
