"""The token service's store is a Store that times every call of the Store interface by
operation, and passes results and errors through unchanged."""

from __future__ import annotations

import inspect

import pytest
from prometheus_client import CollectorRegistry, Histogram

from sidecar.store.base import Conflict, Store
from sidecar.store.memory import MemoryStore
from sidecar.store.records import Tenant
from sidecar.store.timed import TimedStore


def count(registry: CollectorRegistry, op: str) -> float | None:
    return registry.get_sample_value("t_store_seconds_count", {"op": op})


async def test_every_call_is_timed_by_operation_and_answers_as_the_store_does():
    registry = CollectorRegistry()
    store = TimedStore(MemoryStore(), Histogram("t_store_seconds", "t", ["op"], registry=registry))
    assert isinstance(store, Store)
    tenant = Tenant("acme", "Acme", 1.0)
    await store.create_tenant(tenant)
    assert await store.get_tenant("acme") == tenant
    assert await store.get_tenant("nobody") is None
    with pytest.raises(Conflict):  # an error is the store's own, and still timed
        await store.create_tenant(tenant)
    assert (count(registry, "create_tenant"), count(registry, "get_tenant")) == (2, 2)
    assert count(registry, "get_client") is None  # an operation's series appears with its first call


def test_the_whole_store_interface_is_timed():
    interface = {name for name, method in vars(Store).items() if inspect.iscoroutinefunction(method)}
    assert interface and all(vars(TimedStore)[name] is not vars(Store)[name] for name in interface)
