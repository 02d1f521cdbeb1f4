"""Checking a user's password: the built-in store, or an external credentials service."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import httpx

from sidecar.oauth.credentials import Passwords
from sidecar.oauth.errors import TemporarilyUnavailable
from sidecar.store import Store

log = logging.getLogger("sidecar.oauth.users")


@dataclass(frozen=True)
class UserClaims:
    subject: str
    org_id: str | None = None
    project_ids: tuple[str, ...] = ()
    scopes: tuple[str, ...] | None = None  # None = whatever the client allows


class CredentialChecker(Protocol):
    async def check(self, tenant: str, username: str, password: str) -> UserClaims | None: ...


class StoreCredentials:
    """Users kept by this service. Unknown user and wrong password look and cost the same."""

    def __init__(self, store: Store, passwords: Passwords) -> None:
        self._store = store
        self._passwords = passwords

    async def check(self, tenant: str, username: str, password: str) -> UserClaims | None:
        user = await self._store.find_user(tenant, username)
        # argon2 runs in a thread: the event loop keeps answering Checks meanwhile
        ok = await self._passwords.verify_async(user.password_hash if user else None, password)
        if not ok or user is None or user.disabled:
            return None
        return UserClaims(user.id, user.org_id, user.project_ids, user.scopes or None)


class RemoteCredentials:
    """`POST {url}` with {username, password, tenant} → 200 with the user's claims, 401 otherwise."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self._url = url
        self._client = client

    async def check(self, tenant: str, username: str, password: str) -> UserClaims | None:
        try:
            resp = await self._client.post(self._url, json={"username": username, "password": password,
                                                            "tenant": tenant})
        except httpx.HTTPError as exc:
            log.warning("credentials service unreachable", extra={"error": type(exc).__name__})
            raise TemporarilyUnavailable("the credentials service is unavailable") from None
        if resp.status_code in (401, 403, 404):
            return None
        if resp.status_code != 200:
            raise TemporarilyUnavailable("the credentials service is unavailable")
        try:
            data = resp.json()
            subject = str(data.get("sub") or data.get("id") or username)
            projects = data.get("project_ids") or []
            scopes = data.get("scopes")
            return UserClaims(subject, data.get("org_id"), tuple(str(p) for p in projects),
                              tuple(scopes.split() if isinstance(scopes, str) else scopes) if scopes else None)
        except (ValueError, AttributeError, TypeError):
            raise TemporarilyUnavailable("the credentials service answered nonsense") from None
