"""A Store with a client span per call (`store.<operation>`), a child of the request's span.
Like sidecar/store/timed.py it wraps every coroutine method of the Store interface by name;
no argument is recorded (they carry secrets' digests, passwords' hashes, tokens)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from sidecar.store.base import Store


class TracedStore(Store):
    def __init__(self, store: Store, tracer: Tracer, system: str) -> None:
        self._store = store
        self._tracer = tracer
        self._system = system  # "memory" or "redis"


def _traced(name: str, interface: Any) -> Any:
    @functools.wraps(interface, updated=())
    async def traced(self: TracedStore, *args: Any, **kwargs: Any) -> Any:
        with self._tracer.start_as_current_span(
                f"store.{name}", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False,
                attributes={"db.system": self._system, "db.operation.name": name}) as span:
            try:
                return await getattr(self._store, name)(*args, **kwargs)
            except Exception as exc:  # the type only: a message may quote a key
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", type(exc).__name__)
                raise
    return traced


for _name, _method in vars(Store).items():
    if inspect.iscoroutinefunction(_method):
        setattr(TracedStore, _name, _traced(_name, _method))
TracedStore.__abstractmethods__ = frozenset()
