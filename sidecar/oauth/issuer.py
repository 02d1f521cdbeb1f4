"""What the token service issues: access tokens (RFC 9068 claims, signed with the key ring's
current key) and refresh tokens (opaque `rt1-<family>-<secret>`, never JWT-shaped; the store
keeps only the secret's digest)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

from authz.keys import KeyRing
from sidecar.oauth.credentials import digest
from sidecar.store.base import RefreshKey
from sidecar.store.records import RefreshRecord

REFRESH_PREFIX = "rt1"
# an access token of a held family (grants/held_refresh.py) names its family in this claim;
# the family id is no secret (a refresh token carries it in clear too)
HELD_CLAIM = "sid"
# any other access token of a refresh family names it here (no secret either): a token exchanged
# from it (grants/token_exchange.py) joins that family, so revoking the family revokes it too
FAMILY_CLAIM = "fam"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: dict[str, Any]
    expires_in: int


class TokenIssuer:
    def __init__(self, keyring: KeyRing, issuer: str, audience: str, max_ttl: int | None = None) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        # a retired signing key is kept only this long: no token may outlive it
        self.max_ttl = max_ttl

    def access_token(self, *, subject: str, client_id: str, tenant: str | None, scope: Iterable[str],
                     ttl: int, org_id: str | None = None, project_ids: Iterable[str] = (),
                     extra: dict[str, Any] | None = None, audience: str | list[str] | None = None) -> IssuedToken:
        """`audience`: the token's `aud` instead of the default one (token exchange)."""
        now = int(time.time())
        if self.max_ttl is not None and ttl > self.max_ttl:
            ttl = self.max_ttl
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": audience or self.audience, "exp": now + ttl, "iat": now,
            "nbf": now, "jti": secrets.token_urlsafe(16), "client_id": client_id,
            "scope": " ".join(sorted(set(scope))),
        }
        if tenant:
            claims["tenant"] = tenant
        if org_id:
            claims["org_id"] = org_id
        projects = list(dict.fromkeys(project_ids))
        if projects:
            claims["project_ids"] = projects
        if extra:
            claims.update({k: v for k, v in extra.items() if k not in claims})
        token = self.keyring.current.sign(claims, {"typ": "at+jwt"})
        return IssuedToken(token, claims, ttl)


class RefreshToken(NamedTuple):
    """A presented refresh token, taken apart."""

    family: str
    secret: str

    def key(self) -> RefreshKey:
        """Where the store keeps its record."""
        return self.family, digest(self.secret)

    def __repr__(self) -> str:  # never the secret in a log line
        return f"RefreshToken(family={self.family!r})"


def parse_refresh_token(token: str) -> RefreshToken | None:
    """The token's family and secret; None when it is not one of our refresh tokens."""
    parts = token.split("-", 2)
    if len(parts) != 3 or parts[0] != REFRESH_PREFIX or len(parts[1]) != 24 or not parts[2] or len(token) > 512:
        return None
    if any(c not in "0123456789abcdef" for c in parts[1]):
        return None
    return RefreshToken(parts[1], parts[2])


def looks_like_refresh_token(token: str) -> bool:
    return parse_refresh_token(token) is not None


def new_family() -> str:
    return secrets.token_hex(12)


def new_refresh_token(*, client_id: str, tenant: str, subject: str, scope: str, family_expires_at: float,
                      family: str | None = None, org_id: str | None = None, project_ids: tuple[str, ...] = (),
                      secret: str | None = None, jkt: str | None = None,
                      x5t_s256: str | None = None) -> tuple[str, RefreshRecord]:
    """A new token (of a new family unless `family` is given) and the record the store keeps.
    `secret` given: a held family's token, whose secret is its access token's jti (never sent).
    `jkt`, `x5t_s256`: bound to that DPoP key, that client certificate (a public client's)."""
    family = family or new_family()
    held = secret is not None
    secret = secret or secrets.token_urlsafe(32)
    record = RefreshRecord(digest=digest(secret), family=family, client_id=client_id, tenant=tenant,
                           subject=subject, scope=scope, family_expires_at=family_expires_at, created=time.time(),
                           org_id=org_id, project_ids=tuple(project_ids), held=held, jkt=jkt,
                           x5t_s256=x5t_s256)
    return f"{REFRESH_PREFIX}-{family}-{secret}", record
