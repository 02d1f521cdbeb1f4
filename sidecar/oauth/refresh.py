"""Refresh tokens: opaque `rt1-<family>-<secret>` (never JWT-shaped); only the secret's digest is stored."""

from __future__ import annotations

import secrets
import time
from typing import NamedTuple

from sidecar.oauth.credentials import digest
from sidecar.store.base import RefreshKey
from sidecar.store.records import RefreshRecord

PREFIX = "rt1"


class RefreshToken(NamedTuple):
    """A presented refresh token, taken apart."""

    family: str
    secret: str

    def key(self) -> RefreshKey:
        """Where the store keeps its record."""
        return self.family, digest(self.secret)


def parse_refresh_token(token: str) -> RefreshToken | None:
    """The token's family and secret; None when it is not one of our refresh tokens."""
    parts = token.split("-", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 24 or not parts[2] or len(token) > 512:
        return None
    if any(c not in "0123456789abcdef" for c in parts[1]):
        return None
    return RefreshToken(parts[1], parts[2])


def looks_like_refresh_token(token: str) -> bool:
    return parse_refresh_token(token) is not None


def new(*, client_id: str, tenant: str, subject: str, scope: str, family_expires_at: float,
        family: str | None = None, org_id: str | None = None, project_ids: tuple[str, ...] = ()
        ) -> tuple[str, RefreshRecord]:
    family = family or secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    record = RefreshRecord(digest=digest(secret), family=family, client_id=client_id, tenant=tenant,
                           subject=subject, scope=scope, family_expires_at=family_expires_at, created=time.time(),
                           org_id=org_id, project_ids=tuple(project_ids))
    return f"{PREFIX}-{family}-{secret}", record
