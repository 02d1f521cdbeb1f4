"""A refresh load of rotation chains: harness/redis_load.py, shared with the bench."""

from harness.redis_load import Chain, RefreshChains

__all__ = ["Chain", "RefreshChains"]
