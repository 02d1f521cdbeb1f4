"""memory:// — the embedded default. One process only: nothing is shared or kept."""

from __future__ import annotations

import bisect
import dataclasses
import time
from typing import Any, Literal, Sequence

from sidecar.store.base import Conflict, Kind, Page, Penalty, Rotation, Store
from sidecar.store.records import Client, RefreshRecord, ServiceKey, ServiceUser, Tenant, User
from sidecar.store.revisions import KINDS, Editable, ident, revision_of


class MemoryStore(Store):
    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self.tenants: dict[str, Tenant] = {}
        self.clients: dict[str, Client] = {}
        self.users: dict[str, User] = {}
        self.usernames: dict[tuple[str, str], str] = {}
        self.service_users: dict[str, ServiceUser] = {}
        self.service_keys: dict[str, ServiceKey] = {}
        self.refresh: dict[tuple[str, str], RefreshRecord] = {}
        self.revoked_families: dict[str, float] = {}
        self.family_jtis: dict[str, list[tuple[str, float]]] = {}
        self.successors: dict[tuple[str, str], str] = {}  # (family, used digest) → its successor's digest
        self.grace: dict[str, tuple[str, str, float]] = {}  # family → (old digest, sealed successor, until)
        self.revoked_jtis: dict[str, float] = {}
        self.revoked_principals: dict[tuple[str, str], float] = {}
        self.once: dict[str, float] = {}
        self.fails: dict[str, tuple[int, float, float]] = {}  # key → (count, blocked until, forgotten at)

    async def ping(self) -> bool:
        return True

    async def create_tenant(self, tenant: Tenant) -> None:
        if tenant.id in self.tenants:
            raise Conflict(f"tenant {tenant.id} exists")
        self.tenants[tenant.id] = tenant

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id)

    async def put_client(self, client: Client) -> None:
        self.clients[client.client_id] = client

    async def get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    async def delete_client(self, client_id: str, revision: str | None = None) -> bool:
        if not self._still(self.clients, client_id, revision):
            return False
        return self.clients.pop(client_id, None) is not None

    async def create_user(self, user: User) -> None:
        key = (user.tenant, user.username)
        if key in self.usernames:
            raise Conflict(f"username {user.username} exists in tenant {user.tenant}")
        self.usernames[key] = user.id
        self.users[user.id] = user

    async def get_user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def find_user(self, tenant: str, username: str) -> User | None:
        user_id = self.usernames.get((tenant, username))
        return self.users.get(user_id) if user_id else None

    async def delete_user(self, user_id: str, revision: str | None = None) -> bool:
        if not self._still(self.users, user_id, revision):
            return False
        user = self.users.pop(user_id, None)
        if user is None:
            return False
        self.usernames.pop((user.tenant, user.username), None)
        return True

    async def put_service_user(self, service_user: ServiceUser) -> None:
        self.service_users[service_user.id] = service_user

    async def get_service_user(self, service_user_id: str) -> ServiceUser | None:
        return self.service_users.get(service_user_id)

    async def delete_service_user(self, service_user_id: str, revision: str | None = None) -> bool:
        if not self._still(self.service_users, service_user_id, revision):
            return False
        return self.service_users.pop(service_user_id, None) is not None

    async def put_service_key(self, key: ServiceKey) -> None:
        self.service_keys[key.kid] = key

    async def get_service_key(self, kid: str) -> ServiceKey | None:
        return self.service_keys.get(kid)

    async def delete_service_key(self, kid: str) -> bool:
        return self.service_keys.pop(kid, None) is not None

    def _records(self, kind: Kind, owner: str | None) -> dict[str, object]:
        if kind == "tenants":
            return dict(self.tenants)
        if kind == "clients":
            return {k: c for k, c in self.clients.items() if c.tenant == owner and not c.service_user_id}
        if kind == "users":
            return {k: u for k, u in self.users.items() if u.tenant == owner}
        if kind == "service_users":
            return {k: s for k, s in self.service_users.items() if s.tenant == owner}
        if kind == "secrets":
            return {k: c for k, c in self.clients.items() if c.service_user_id == owner}
        return {k: key for k, key in self.service_keys.items() if key.service_user_id == owner}

    async def list_page(self, kind: Kind, owner: str | None, limit: int, after: str | None = None) -> Page:
        records = self._records(kind, owner)
        ids = sorted(records)
        start = bisect.bisect_right(ids, after) if after is not None else 0
        chosen = ids[start:start + limit]
        more = start + limit < len(ids)
        return Page([records[i] for i in chosen], chosen[-1] if more and chosen else None)

    async def put_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.id] = tenant

    async def put_user(self, user: User) -> None:
        self.users[user.id] = user

    def _table(self, kind: Editable) -> dict:
        return {"tenants": self.tenants, "clients": self.clients, "users": self.users,
                "service_users": self.service_users}[kind]

    @staticmethod
    def _still(table: dict, key: str, revision: str | None) -> bool:
        """Whether the record at `key` has `revision` (None: any, or none)."""
        if revision is None:
            return True
        record = table.get(key)
        return record is not None and revision_of(record) == revision

    async def read_revised(self, kind: Editable, key: str) -> tuple[Any, str] | None:
        record = self._table(kind).get(key)
        return (record, revision_of(record)) if record is not None else None

    async def replace(self, record: Tenant | Client | User | ServiceUser, revision: str) -> str | None:
        # no await inside: atomic with respect to the event loop
        table, key = self._table(KINDS[type(record)]), ident(record)
        if not self._still(table, key, revision):  # changed, or gone
            return None
        table[key] = record
        return revision_of(record)

    async def put_refresh(self, record: RefreshRecord, access: tuple[str, float]) -> None:
        self.refresh[(record.family, record.digest)] = record
        self.family_jtis.setdefault(record.family, []).append(access)

    async def get_refresh(self, family: str, digest: str) -> RefreshRecord | None:
        return self.refresh.get((family, digest))

    async def rotate_refresh(self, old: RefreshRecord, new: RefreshRecord, access: tuple[str, float],
                             now: float, grace: float = 0.0, sealed: str = "") -> Rotation:
        # no await inside: atomic with respect to the event loop
        family, old_digest = old.family, old.digest
        old = self.refresh.get((family, old_digest))
        if old is None:
            return Rotation("missing")
        if family in self.revoked_families or self._principal_revoked(old.subject, old.client_id, old.created):
            return Rotation("revoked", old)
        if old.family_expires_at <= now:
            return Rotation("expired", old)
        if old.used:
            if self.successors.get((family, old_digest)) == new.digest:
                return Rotation("ok", old)  # this very rotation, asked again
            kept = self.grace.get(family)
            if kept and kept[0] == old_digest and kept[2] > self._clock():
                self.family_jtis.setdefault(family, []).append(access)
                return Rotation("replayed", old, kept[1])
            self.revoked_families[family] = old.family_expires_at
            return Rotation("reused", old)
        self.refresh[(family, old_digest)] = dataclasses.replace(old, used=True)
        self.successors[(family, old_digest)] = new.digest
        self.refresh[(family, new.digest)] = new
        self.family_jtis.setdefault(family, []).append(access)
        if grace > 0 and sealed:
            self.grace[family] = (old_digest, sealed, self._clock() + grace)
        return Rotation("ok", old)

    async def revoke_family(self, family: str, until: float) -> None:
        self.revoked_families[family] = until

    async def family_revoked(self, family: str) -> bool:
        return family in self.revoked_families

    async def family_access(self, family: str) -> list[tuple[str, float]]:
        now = self._clock()
        return [(j, e) for j, e in self.family_jtis.get(family, []) if e > now]

    async def join_family(self, family: str, access: tuple[str, float]) -> bool:
        now = self._clock()
        jtis = self.family_jtis[family] = [e for e in self.family_jtis.get(family, []) if e[1] > now]
        jtis.append(access)  # expired entries went: a service exchanging often must not grow the list
        return family not in self.revoked_families

    async def revoke_jti(self, jti: str, exp: float) -> None:
        self.revoked_jtis[jti] = exp

    async def revoke_principal(self, kind: Literal["sub", "client"], value: str, at: float) -> None:
        self.revoked_principals[(kind, value)] = at

    async def is_revoked(self, jti, subject, client_id, issued_at) -> bool:
        return (jti is not None and jti in self.revoked_jtis) or self._principal_revoked(subject, client_id, issued_at)

    def _principal_revoked(self, subject, client_id, issued_at) -> bool:
        for key in (("sub", subject), ("client", client_id)):
            at = self.revoked_principals.get(key) if key[1] is not None else None
            if at is not None and (issued_at is None or issued_at <= at):
                return True
        return False

    async def use_once(self, key: str, exp: float) -> bool:
        now = self._clock()
        if self.once.get(key, 0) > now:
            return False
        self.once[key] = exp
        if len(self.once) > 100_000:  # keep it bounded: drop the expired ones
            self.once = {k: e for k, e in self.once.items() if e > now}
        return True

    async def record_failure(self, key: str, penalty: Penalty) -> float:
        now = self._clock()
        count, until, forgotten = self.fails.get(key, (0, 0.0, 0.0))
        if forgotten <= now:
            count, until = 0, 0.0
        count += 1
        delay = penalty.delay(count)
        if delay:
            until = now + delay
        self.fails[key] = (count, until, now + penalty.window)
        if len(self.fails) > 100_000:  # keep it bounded: drop the forgotten ones
            self.fails = {k: v for k, v in self.fails.items() if v[2] > now}
        return until

    async def throttle_state(self, keys: Sequence[str]) -> tuple[int, tuple[float, ...]]:
        now = self._clock()
        states = [self.fails.get(key, (0, 0.0, 0.0)) for key in keys]
        live = [state if state[2] > now else (0, 0.0, 0.0) for state in states]
        return (live[0][0] if live else 0), tuple(state[1] for state in live)

    async def clear_failures(self, key: str) -> None:
        self.fails.pop(key, None)
