"""Checking who asks: a client's secret (kept as a SHA-256 digest) against the login state
read for it, and a user's password (argon2id here, or an external credentials service).
Every comparison in constant time; an unknown client or user costs what a known one does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from config.settings import PasswordHashing
from sidecar.oauth.certificates import CERTIFICATE_METHODS, PresentedCertificate, certificate_authenticates
from sidecar.oauth.errors import TemporarilyUnavailable
from sidecar.store import Store
from sidecar.store.records import Client

log = logging.getLogger("sidecar.oauth.users")


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


_NO_SUCH_CLIENT = digest("no such client")


def genuine_client(secret: str, client: Client | None,
                   certificate: PresentedCertificate | None = None) -> Client | None:
    """`client` (as read from the store, None when unknown) when `secret` is its secret; a
    public client (`token_endpoint_auth_method: none`) when no secret is presented; a
    certificate client (RFC 8705) when no secret is presented and `certificate` is its own."""
    if client is not None and client.token_endpoint_auth_method == "none":
        return None if secret else client  # RFC 6749 §2.1: a public client has no secret to present
    if client is not None and client.token_endpoint_auth_method in CERTIFICATE_METHODS:
        return None if secret or not certificate_authenticates(client, certificate) else client
    # compare even when the client is unknown, so timing does not tell which case it is
    ok = secret_matches(secret, client.secret_digest if client else _NO_SUCH_CLIENT)
    return client if client is not None and ok and secret and client.secret_digest else None


class Passwords:
    def __init__(self, params: PasswordHashing) -> None:
        self._hasher = PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_kib,
                                      parallelism=params.parallelism)
        # checked against when the user does not exist, so both cases cost the same
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        # hashes run off the event loop, one per core: more at once only evict each other's
        # memory_kib from the caches, and the same cores then check fewer passwords per second
        self._threads = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="argon2")

    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.verify, stored_hash, password)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


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
