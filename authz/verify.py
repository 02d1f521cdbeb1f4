"""JWT verification against our own keys and configured trusted issuers.

The issuer is chosen among configured ones by the `iss` claim; within it the `kid`
picks a key, and the key's pinned algorithm must equal the header's `alg`. Nothing in
the token ever chooses a URL or an algorithm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from authz import jose
from authz.errors import TokenError
from authz.identity import Identity
from authz.keys import VerificationKey
from authz.token_kind import check_access_token


class KeySource(Protocol):
    async def key_for(self, kid: str | None) -> VerificationKey | None: ...


class StaticKeys:
    """Keys known at start (our own key ring, or a trusted issuer's pinned PEMs)."""

    def __init__(self, keys: Mapping[str, VerificationKey]) -> None:
        self.keys = dict(keys)

    async def key_for(self, kid: str | None) -> VerificationKey | None:
        if kid is None:
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)


@dataclass(slots=True)
class IssuerPolicy:
    issuer: str
    keys: KeySource
    audiences: tuple[str, ...]
    # only explicitly typed access tokens (typ: at+jwt, RFC 9068 §2.1): always for our own,
    # for a trusted issuer when its `require_access_token_typ` says so
    require_at_jwt: bool = False


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int past a float's range
        number = math.nan
    if not math.isfinite(number):  # Python's JSON reads NaN, which compares as never expired
        raise TokenError(f"claim {name} must be a number", "bad_claim")
    return number


@dataclass
class JwtVerifier:
    issuers: dict[str, IssuerPolicy]
    leeway: float = 30.0
    clock: Callable[[], float] = time.time
    on_unknown_kid: Callable[[], None] = field(default=lambda: None)

    async def verify(self, token: str) -> Identity:
        jws = jose.parse(token)
        header, claims = jws.header, jws.claims
        iss = claims.get("iss")
        policy = self.issuers.get(iss) if isinstance(iss, str) else None
        if policy is None:
            raise TokenError("token issuer is not trusted", "untrusted_issuer")
        check_access_token(header, claims, policy.require_at_jwt)  # not an ID or refresh token
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("token kid must be a string", "malformed")
        key = await policy.keys.key_for(kid)
        if key is None:
            self.on_unknown_kid()
            raise TokenError("token signing key is unknown", "unknown_kid")
        if header["alg"] != key.alg:
            raise TokenError("token algorithm does not match its key", "bad_alg")
        try:
            valid = key.verify(jws.signing_input, jws.signature)
        except Exception:
            valid = False
        if not valid:
            raise TokenError("token signature is invalid", "bad_signature")
        return self._check_claims(claims, policy)

    def _check_claims(self, claims: Mapping[str, Any], policy: IssuerPolicy) -> Identity:
        now = self.clock()
        exp = _number(claims, "exp")
        if exp is None:
            raise TokenError("token has no exp claim", "bad_claim")
        if exp <= now - self.leeway:
            raise TokenError("token has expired", "expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and nbf > now + self.leeway:
            raise TokenError("token is not valid yet", "not_yet_valid")
        iat = _number(claims, "iat")
        if iat is not None and iat > now + self.leeway:
            raise TokenError("token was issued in the future", "not_yet_valid")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
        if not auds or not any(a in policy.audiences for a in auds if isinstance(a, str)):
            raise TokenError("token audience is not accepted", "wrong_audience")
        return Identity.from_claims(claims, expires_at=exp + self.leeway)

