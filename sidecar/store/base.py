"""The store interface the token service and ext_authz revocation checks use."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from authz.errors import Unavailable
from sidecar.store.records import Client, RefreshRecord, ServiceKey, ServiceUser, Tenant, User
from sidecar.store.revisions import Editable


class StoreUnavailable(Unavailable):
    """The backing store did not answer (→ 503 temporarily_unavailable; ext_authz denies with 503)."""


class Conflict(Exception):
    """A record with that identity exists already."""


@dataclass(frozen=True)
class Rotation:
    outcome: Literal["ok", "replayed", "missing", "reused", "revoked", "expired"]
    record: RefreshRecord | None = None
    successor: str | None = None  # "replayed": the successor as sealed by the first rotation


RefreshKey = tuple[str, str]  # (family, digest of the token's secret): where a refresh record is kept


@dataclass(frozen=True)
class LoginState:
    """What a token request reads first, in one store round trip."""

    client: Client | None
    failures: int  # failures counted on the first throttle key
    blocked_until: tuple[float, ...]  # per throttle key: when its delay ends (epoch seconds; 0: none)
    refresh: RefreshRecord | None = None  # the record the grant asked to prefetch, if it exists


@dataclass(frozen=True)
class Penalty:
    """Growing delays after failures: past `free` failures, the n-th one blocks the key for
    base × 2^(n - free) seconds, at most `cap`; the count is forgotten `window` seconds after
    the last failure."""
    free: int
    base: float
    cap: float
    window: int

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - self.free, 40))


# what the admin API lists, and whose: tenants (owner None); clients, users, service users
# (owner: a tenant); a service user's secrets and keys (owner: the service user)
Kind = Literal["tenants", "clients", "users", "service_users", "secrets", "keys"]


@dataclass(frozen=True)
class Page:
    """One page of a list, in id order; `after` is the id to continue after (None: the end)."""
    items: list[Any]
    after: str | None


class Store(abc.ABC):
    # lifecycle
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    @abc.abstractmethod
    async def ping(self) -> bool: ...

    # tenants, clients, users, service users, keys
    @abc.abstractmethod
    async def create_tenant(self, tenant: Tenant) -> None: ...
    @abc.abstractmethod
    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    @abc.abstractmethod
    async def put_client(self, client: Client) -> None: ...
    @abc.abstractmethod
    async def get_client(self, client_id: str) -> Client | None: ...

    async def login_state(self, client_id: str | None, throttle_keys: Sequence[str],
                          refresh: RefreshKey | None = None) -> LoginState:
        """What a token request reads first: the client (None when no id is given), the state
        of its throttle keys and, for a refresh grant, the record at `refresh`. Stores with
        round trips read them all at once."""
        client = await self.get_client(client_id) if client_id else None
        count, blocked = await self.throttle_state(throttle_keys)
        record = await self.get_refresh(*refresh) if refresh else None
        return LoginState(client, count, blocked, record)
    @abc.abstractmethod
    async def delete_client(self, client_id: str, revision: str | None = None) -> bool:
        """With `revision`: only if the record still has it (see `replace`)."""
    @abc.abstractmethod
    async def create_user(self, user: User) -> None:
        """Raises Conflict when the username is taken in that tenant."""
    @abc.abstractmethod
    async def get_user(self, user_id: str) -> User | None: ...
    @abc.abstractmethod
    async def find_user(self, tenant: str, username: str) -> User | None: ...
    @abc.abstractmethod
    async def delete_user(self, user_id: str, revision: str | None = None) -> bool: ...
    @abc.abstractmethod
    async def put_service_user(self, service_user: ServiceUser) -> None: ...
    @abc.abstractmethod
    async def get_service_user(self, service_user_id: str) -> ServiceUser | None: ...
    @abc.abstractmethod
    async def delete_service_user(self, service_user_id: str, revision: str | None = None) -> bool: ...
    @abc.abstractmethod
    async def put_service_key(self, key: ServiceKey) -> None: ...
    @abc.abstractmethod
    async def get_service_key(self, kid: str) -> ServiceKey | None: ...
    @abc.abstractmethod
    async def delete_service_key(self, kid: str) -> bool: ...

    # admin reads and updates
    @abc.abstractmethod
    async def list_page(self, kind: Kind, owner: str | None, limit: int, after: str | None = None) -> Page:
        """Up to `limit` records of that kind and owner with ids after `after`, in id order."""
    @abc.abstractmethod
    async def put_tenant(self, tenant: Tenant) -> None:
        """Replace an existing tenant's record (create_tenant makes one)."""
    @abc.abstractmethod
    async def put_user(self, user: User) -> None:
        """Replace an existing user's record; the username does not change."""
    @abc.abstractmethod
    async def read_revised(self, kind: Editable, key: str) -> tuple[Any, str] | None:
        """A tenant, client, user or service user and its revision (sidecar/store/revisions.py)."""
    @abc.abstractmethod
    async def replace(self, record: Tenant | Client | User | ServiceUser, revision: str) -> str | None:
        """Store `record` over the one with its id, atomically, only if that one still has
        `revision` (it is unchanged since it was read): the new revision. None when it changed
        or went since: a write never brings a deleted record back. Its owner (tenant, service
        user) and username stay as they were: the list indexes are not touched."""

    # refresh families
    @abc.abstractmethod
    async def put_refresh(self, record: RefreshRecord, access: tuple[str, float]) -> None:
        """Start a family with its first refresh token and the access token (jti, exp) issued with it."""
    @abc.abstractmethod
    async def get_refresh(self, family: str, digest: str) -> RefreshRecord | None: ...
    @abc.abstractmethod
    async def rotate_refresh(self, old: RefreshRecord, new: RefreshRecord, access: tuple[str, float],
                             now: float, grace: float = 0.0, sealed: str = "") -> Rotation:
        """Atomically: mark the old token used, store its successor and add the access token
        (jti, exp) to the family. Exactly one of concurrent callers gets "ok".
        Safe to retry: the same call again (same `new`) answers "ok" again and changes nothing.
        With `grace` > 0, `sealed` (the successor token, sealed under the old one) is kept
        that many seconds: another rotation of the same old token within them answers
        "replayed" with it (and adds its access token to the family). Any other use of a used
        token is reuse: the whole family is revoked, "reused". "revoked" when the family, or
        the old token's subject or client, was revoked (the old token may be marked used then:
        it could never be used again anyway)."""
    @abc.abstractmethod
    async def revoke_family(self, family: str, until: float) -> None: ...
    @abc.abstractmethod
    async def family_revoked(self, family: str) -> bool: ...
    @abc.abstractmethod
    async def family_access(self, family: str) -> list[tuple[str, float]]: ...
    @abc.abstractmethod
    async def join_family(self, family: str, access: tuple[str, float]) -> bool:
        """Add an access token (jti, exp) to a family (a token exchanged from one of its tokens),
        then answer whether the family is still unrevoked, in one round trip. In this order, a
        revocation running at the same time either sees the token or is seen here."""

    # revocation of access tokens
    @abc.abstractmethod
    async def revoke_jti(self, jti: str, exp: float) -> None: ...
    @abc.abstractmethod
    async def revoke_principal(self, kind: Literal["sub", "client"], value: str, at: float) -> None:
        """Every token of that subject/client issued at or before `at` is revoked."""
    @abc.abstractmethod
    async def is_revoked(self, jti: str | None, subject: str | None, client_id: str | None,
                         issued_at: float | None) -> bool: ...

    # one-time use and throttling
    @abc.abstractmethod
    async def use_once(self, key: str, exp: float) -> bool:
        """True the first time `key` is seen before exp (assertion jti replay protection)."""
    @abc.abstractmethod
    async def record_failure(self, key: str, penalty: Penalty) -> float:
        """Count a failure on `key`; when its delay ends (epoch seconds; 0: no delay)."""
    @abc.abstractmethod
    async def throttle_state(self, keys: Sequence[str]) -> tuple[int, tuple[float, ...]]:
        """(failures counted on keys[0], when each key's delay ends: 0 for none)."""
    @abc.abstractmethod
    async def clear_failures(self, key: str) -> None: ...

    # revocation fan-out to other workers and replicas
    async def publish_revocation(self, message: dict) -> None: ...
    async def subscribe_revocations(self, callback) -> None: ...
