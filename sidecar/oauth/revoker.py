"""Revocation: recorded in the store, felt at once by this process's ext_authz cache and,
through the store's pub/sub, by every other worker and replica."""

from __future__ import annotations

import time
from typing import Any

from authz.cache import TokenCache
from sidecar.store import Store


class Revoker:
    def __init__(self, store: Store, cache: TokenCache) -> None:
        self._store = store
        self._cache = cache

    def apply(self, message: dict[str, Any]) -> None:
        """Evict from this process's cache (also called for messages from other processes)."""
        for jti in message.get("jtis", ()):
            self._cache.evict(jti=jti)
        if message.get("sub"):
            self._cache.evict(subject=message["sub"])
        if message.get("client_id"):
            self._cache.evict(client_id=message["client_id"])

    async def _announce(self, message: dict[str, Any]) -> None:
        self.apply(message)
        await self._store.publish_revocation(message)

    async def access_tokens(self, jtis: list[tuple[str, float]]) -> None:
        for jti, exp in jtis:
            await self._store.revoke_jti(jti, exp)
        if jtis:
            await self._announce({"jtis": [jti for jti, _ in jtis]})

    async def family(self, family: str, until: float) -> None:
        await self._store.revoke_family(family, until)
        await self.access_tokens(await self._store.family_access(family))

    async def subject(self, subject: str) -> None:
        await self._store.revoke_principal("sub", subject, time.time())
        await self._announce({"sub": subject})

    async def client(self, client_id: str) -> None:
        await self._store.revoke_principal("client", client_id, time.time())
        await self._announce({"client_id": client_id})
