"""Stores behind one interface: memory:// (embedded default) and redis:// (shared, durable)."""

from sidecar.store.base import Store, StoreUnavailable


def open_store(url: str) -> Store:
    if url.startswith("memory://"):
        from sidecar.store.memory import MemoryStore
        return MemoryStore()
    from sidecar.store.redis_store import RedisStore
    return RedisStore.from_url(url)


__all__ = ["Store", "StoreUnavailable", "open_store"]
