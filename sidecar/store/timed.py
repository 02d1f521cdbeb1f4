"""A Store that records each call's latency (the token service's store metric) and passes it
on to the store it wraps. It is a Store: every coroutine method of the Store interface is
wrapped, by name, when the class is made; nothing else is forwarded."""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any

from sidecar.store.base import Store


class TimedStore(Store):
    def __init__(self, store: Store, histogram: Any) -> None:
        self._store = store
        self._histogram = histogram
        self._observers: dict[str, Any] = {}  # a label's series appears with its first call

    def _observe(self, name: str, seconds: float) -> None:
        observe = self._observers.get(name)
        if observe is None:
            observe = self._observers[name] = self._histogram.labels(name).observe
        observe(seconds)


def _timed(name: str, interface: Any) -> Any:
    @functools.wraps(interface, updated=())
    async def timed(self: TimedStore, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await getattr(self._store, name)(*args, **kwargs)
        finally:
            self._observe(name, time.perf_counter() - started)
    return timed


for _name, _method in vars(Store).items():
    if inspect.iscoroutinefunction(_method):
        setattr(TimedStore, _name, _timed(_name, _method))
TimedStore.__abstractmethods__ = frozenset()
