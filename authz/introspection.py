"""Opaque tokens: RFC 7662 introspection, against our own store or an external endpoint."""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Protocol

import httpx

from authz.errors import NotMine, TokenError
from authz.identity import Identity

log = logging.getLogger("authz.introspection")


class Introspector(Protocol):
    """Answers an Identity for an active access token, raises TokenError otherwise,
    or NotMine when it does not know the token at all."""

    async def introspect(self, token: str) -> Identity: ...


def identity_from_introspection(answer: Mapping[str, Any], now: float, max_ttl: float) -> Identity:
    """An RFC 7662 answer to an Identity; inactive or refresh tokens are refused."""
    if answer.get("active") is not True:
        raise TokenError("token is not active", "inactive")
    token_type = str(answer.get("token_type", "access_token")).lower()
    if token_type in ("refresh_token", "refresh"):
        raise TokenError("refresh tokens are not access tokens", "refresh_token")
    exp = answer.get("exp")
    expires_at = float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else now + max_ttl
    if expires_at <= now:
        raise TokenError("token has expired", "expired")
    return Identity.from_claims(answer, expires_at=expires_at)


class RemoteIntrospector:
    """An external RFC 7662 endpoint, called with our client credentials (HTTP Basic)."""

    def __init__(self, url: str, client_id: str, client_secret: str, client: httpx.AsyncClient,
                 max_ttl: float) -> None:
        self._url = url
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._client = client
        self._max_ttl = max_ttl

    async def introspect(self, token: str) -> Identity:
        try:
            resp = await self._client.post(self._url, data={"token": token, "token_type_hint": "access_token"},
                                           auth=self._auth, headers={"accept": "application/json"})
            resp.raise_for_status()
            answer = resp.json()
        except Exception as exc:
            log.warning("introspection failed", extra={"url": self._url, "error": str(exc)[:200]})
            raise TokenError("token could not be introspected", "introspection_failed") from None
        if not isinstance(answer, dict):
            raise TokenError("token could not be introspected", "introspection_failed")
        return identity_from_introspection(answer, time.time(), self._max_ttl)


class ChainIntrospector:
    """Tries each introspector in turn until one knows the token."""

    def __init__(self, introspectors: list[Introspector]) -> None:
        self._introspectors = introspectors

    async def introspect(self, token: str) -> Identity:
        for introspector in self._introspectors:
            try:
                return await introspector.introspect(token)
            except NotMine:
                continue
        raise TokenError("token is not recognised", "unknown_token")
