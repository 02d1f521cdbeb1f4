"""Refresh tokens: opaque `rt1.<family>.<secret>`; only the secret's digest is stored."""

from __future__ import annotations

import secrets
import time

from sidecar.oauth.credentials import digest
from sidecar.store.records import RefreshRecord

PREFIX = "rt1"


def parse(token: str) -> tuple[str, str] | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2] or len(token) > 512:
        return None
    return parts[1], parts[2]


def looks_like_refresh_token(token: str) -> bool:
    return parse(token) is not None


def new(*, client_id: str, tenant: str, subject: str, scope: str, family_expires_at: float,
        family: str | None = None, org_id: str | None = None, project_ids: tuple[str, ...] = ()
        ) -> tuple[str, RefreshRecord]:
    family = family or secrets.token_urlsafe(12).replace(".", "")
    secret = secrets.token_urlsafe(32)
    record = RefreshRecord(digest=digest(secret), family=family, client_id=client_id, tenant=tenant,
                           subject=subject, scope=scope, family_expires_at=family_expires_at, created=time.time(),
                           org_id=org_id, project_ids=tuple(project_ids))
    return f"{PREFIX}.{family}.{secret}", record
