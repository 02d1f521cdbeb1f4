"""Tokens a client presents to the token service as evidence (RFC 8693's subject and actor
tokens), verified exactly as ext_authz verifies a bearer token: the engine's own verifier (our
issuer and the trusted ones, their keys, algorithms, `exp`, `nbf`, audiences), its introspector
for opaque tokens, and its revocation check. Nothing is cached: an exchange is rare next to a
Check, and a revocation must be felt by the very next one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from authz import jose
from authz.errors import TokenError
from authz.identity import Identity
from authz.introspection import Introspector
from authz.verify import JwtVerifier
from sidecar.oauth.errors import InvalidGrant


@dataclass(frozen=True, slots=True)
class Presented:
    """A verified token: its identity, and for a JWT its claims (`act`, `may_act`, `fam`, `exp`:
    what an Identity does not keep). An opaque token's claims are empty."""

    identity: Identity
    claims: dict[str, Any]


class PresentedTokens:
    def __init__(self, verifier: JwtVerifier, introspector: Introspector | None,
                 is_revoked: Callable[[Identity], Awaitable[bool]] | None) -> None:
        self.verifier = verifier
        self.introspector = introspector
        self.is_revoked = is_revoked

    async def verify(self, token: str, what: str, jwt_only: bool = False) -> Presented:
        """The token's identity and claims; InvalidGrant naming `what` (the parameter) when it
        is expired, revoked, forged, untrusted or unknown (RFC 8693 §2.2.2). A store outage
        is raised as it is (503)."""
        try:
            if jose.looks_like_jwt(token):
                identity = await self.verifier.verify(token)
                claims = jose.parse(token).claims  # the same bytes whose signature was just checked
            elif jwt_only:
                raise TokenError("is not a JWT", "malformed")
            elif self.introspector is not None and len(token) <= jose.MAX_TOKEN_BYTES:
                identity, claims = await self.introspector.introspect(token), {}
            else:
                raise TokenError("is not recognised", "unknown_token")
            if self.is_revoked is not None and await self.is_revoked(identity):
                raise TokenError("has been revoked", "revoked")
        except TokenError as exc:
            text = exc.description.removeprefix("token ")
            raise InvalidGrant(f"{what}: {text}") from None
        return Presented(identity, claims)
