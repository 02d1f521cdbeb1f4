"""What the admin reads answer: a record's metadata, never a secret digest or password hash,
and the pagination of lists (`limit`, opaque `cursor`, `next_cursor`)."""

from __future__ import annotations

import time
from typing import Any

from sidecar.store.records import Client, ServiceKey, ServiceUser, Tenant, User

DEFAULT_LIMIT, MAX_LIMIT, MAX_CURSOR = 100, 1000, 512


class BadPage(ValueError):
    """A `limit` or `cursor` the API refuses (→ 400, naming which)."""


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def tenant(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "disabled": t.disabled, "created": _when(t.created)}


def client(c: Client) -> dict[str, Any]:
    return {"client_id": c.client_id, "tenant": c.tenant, "name": c.name, "grant_types": list(c.grant_types),
            "scopes": list(c.scopes), "access_token_ttl": c.access_token_ttl, "refresh_policy": c.refresh_policy,
            "refresh_rotation": c.refresh_rotation, "disabled": c.disabled,
            "token_endpoint_auth_method": c.token_endpoint_auth_method,
            "tls_client_auth_subject_dn": c.tls_client_auth_subject_dn,
            "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
            "exchange_audiences": list(c.exchange_audiences), "jwks": c.jwks,
            "tls_client_certificate_bound_access_tokens": c.tls_client_certificate_bound_access_tokens,
            "created": _when(c.created)}


def user(u: User) -> dict[str, Any]:
    return {"id": u.id, "tenant": u.tenant, "username": u.username, "org_id": u.org_id,
            "project_ids": list(u.project_ids), "scopes": list(u.scopes), "disabled": u.disabled,
            "created": _when(u.created)}


def service_user(s: ServiceUser) -> dict[str, Any]:
    return {"id": s.id, "tenant": s.tenant, "name": s.name, "org_id": s.org_id, "project_ids": list(s.project_ids),
            "scopes": list(s.scopes), "disabled": s.disabled, "created": _when(s.created)}


def secret(c: Client) -> dict[str, Any]:
    return {"client_id": c.client_id, "title": c.title, "created": _when(c.created)}


def key(k: ServiceKey) -> dict[str, Any]:
    return {"kid": k.kid, "alg": k.alg, "title": k.title, "created": _when(k.created)}


def page_args(query: Any) -> tuple[int, str | None]:
    """(limit, the id to continue after) from the query string."""
    raw = query.get("limit")
    if raw is None:
        limit = DEFAULT_LIMIT
    elif not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadPage(f"limit: must be an integer from 1 to {MAX_LIMIT}")
    else:
        limit = int(raw)
    cursor = query.get("cursor")
    if cursor is not None and not 1 <= len(cursor) <= MAX_CURSOR:
        raise BadPage(f"cursor: must be 1 to {MAX_CURSOR} characters, as next_cursor gave it")
    return limit, cursor


def cursor(after: str | None) -> str | None:
    # the id the page ended at: lists are in id order, so any string is a place to go on from
    # (documented as opaque, so the form may change)
    return after
