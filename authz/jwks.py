"""A trusted issuer's JWKS: fetched in the background, refreshed on its lifetime.

An unknown `kid` triggers at most one refetch per cooldown, shared by every waiting
request (single flight). A failed fetch keeps the last good keys.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Callable

import httpx

from authz.keys import VerificationKey, key_from_jwk

log = logging.getLogger("authz.jwks")
_MAX_AGE = re.compile(r"max-age=(\d+)")


class JwksSource:
    def __init__(self, uri: str, client: httpx.AsyncClient, refresh_seconds: float, cooldown_seconds: float,
                 on_fetch: Callable[[bool], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.uri = uri
        self._client = client
        self._refresh = refresh_seconds
        self._cooldown = cooldown_seconds
        self._on_fetch = on_fetch or (lambda ok: None)
        self._clock = clock
        self.keys: dict[str, VerificationKey] = {}
        self.loaded = False
        self._last_attempt = float("-inf")
        self._inflight: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lifetime = refresh_seconds

    async def fetch(self) -> None:
        """One fetch, shared by all concurrent callers."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        self._inflight = asyncio.get_running_loop().create_future()
        try:
            await self._fetch_once()
        finally:
            self._inflight.set_result(None)
            self._inflight = None

    async def _fetch_once(self) -> None:
        self._last_attempt = self._clock()
        try:
            resp = await self._client.get(self.uri, headers={"accept": "application/json"})
            resp.raise_for_status()
            document = resp.json()
            keys = self._parse(document)
        except Exception as exc:  # keep the last good keys whatever went wrong
            self._on_fetch(False)
            log.warning("jwks fetch failed", extra={"jwks_uri": self.uri, "error": str(exc)[:200]})
            return
        self.keys = keys
        self.loaded = True
        match = _MAX_AGE.search(resp.headers.get("cache-control", ""))
        self._lifetime = max(min(float(match.group(1)), self._refresh), 1.0) if match else self._refresh
        self._on_fetch(True)

    def _parse(self, document: Any) -> dict[str, VerificationKey]:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document")
        keys = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            try:
                key = key_from_jwk(jwk)
            except Exception as exc:  # one odd key must not hide the others
                log.info("jwks key skipped", extra={"jwks_uri": self.uri, "error": str(exc)[:200]})
                continue
            keys[key.kid] = key
        if not keys:
            raise ValueError("JWKS holds no usable signing key")
        return keys

    async def key_for(self, kid: str | None) -> VerificationKey | None:
        key = self._lookup(kid)
        if key is None and self._clock() - self._last_attempt >= self._cooldown:
            await self.fetch()
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        if kid is None:
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            if self._clock() - self._last_attempt >= (self._lifetime if self.loaded else 0):
                await self.fetch()
            # before the first keys load, retry quickly; afterwards on the document's lifetime
            await asyncio.sleep(1.0 if not self.loaded else max(self._lifetime / 10, 0.5))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
