"""A key used once (`Store.use_once`), recorded within a time bound: a DPoP proof's `jti`, at
ext_authz and at the token endpoint alike (`dpop.replay_timeout_seconds`). A store that does
not answer in time (a stalled Redis) is an outage now, not after the Redis client's own
timeouts and retries (~9 s); the caller answers 503 and never accepts the unchecked proof."""

from __future__ import annotations

import asyncio

from sidecar.store.base import Store, StoreUnavailable


async def use_once_within(store: Store, key: str, until: float, timeout: float) -> bool:
    """`store.use_once(key, until)`, or StoreUnavailable when it has not answered in `timeout` s."""
    try:
        async with asyncio.timeout(timeout):  # a timer, not a task
            return await store.use_once(key, until)
    except TimeoutError:
        raise StoreUnavailable(f"DPoP replay check: no answer within {timeout:g} s") from None
