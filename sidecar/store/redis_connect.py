"""redis-py internals: checked against redis 8.1.0 (guarded by tests/test_canaries.py).
Connecting to Redis from a store URL (redis://, rediss://, redis+sentinel://, redis+cluster://),
and what its failures become: every one, Cluster ones included, is StoreUnavailable (→ 503)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sidecar.store.base import StoreUnavailable

# every failure of the client or the server behind it: the caller answers 503
ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


def guard(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except ERRORS as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
    return wrapper


def connect(url: str) -> Any:
    # a restarted Redis leaves dead pooled connections: retry those quickly instead of failing
    options = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, "health_check_interval": 15,
               "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
               "retry_on_error": [RedisConnectionError, RedisTimeoutError],
               # redis-py (async, plain and per Cluster node) caps a pool at 100 connections and
               # fails the 101st concurrent command at once (MaxConnectionsError) instead of
               # waiting: a worker with a few hundred requests in flight must not 503 on that
               "max_connections": 1000}
    if url.startswith("redis+sentinel://"):
        from redis.asyncio.sentinel import Sentinel
        parts = urlsplit(url)
        hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]) if ":" in h else 26379)
                 for h in parts.netloc.split("@")[-1].split(",")]
        path = [p for p in parts.path.split("/") if p]
        service = path[0] if path else "mymaster"
        db = int(path[1]) if len(path) > 1 else 0
        sentinel = Sentinel(hosts, **options)
        return sentinel.master_for(service, db=db, password=parts.password, **options)
    if url.startswith("redis+cluster://"):
        return RedisCluster.from_url("redis://" + url[len("redis+cluster://"):], **options)
    return redis.Redis.from_url(url, **options)
