"""Access tokens: claims (RFC 9068) and signing with the key ring's current key."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterable

from authz.keys import KeyRing


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
                     extra: dict[str, Any] | None = None) -> IssuedToken:
        now = int(time.time())
        if self.max_ttl is not None and ttl > self.max_ttl:
            ttl = self.max_ttl
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": self.audience, "exp": now + ttl, "iat": now,
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
