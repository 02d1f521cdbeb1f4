"""redis-py internals: checked against redis 8.1.0 (guarded by tests/test_canaries.py).
redis:// (also rediss://, redis+sentinel://, redis+cluster://) with redis.asyncio.

Keys of one refresh family share a hash tag, so the rotation script stays on one
Cluster slot; reads that span several keys (a token's revocation marks) are one MGET on
a single Redis and one GET per key on a Cluster. Every Redis failure, Cluster ones
included, surfaces as StoreUnavailable (→ 503).

The admin lists read sorted-set indexes (score 0, ordered by id, paged with ZRANGE BYLEX):
one for the tenants, one per tenant for its clients, users and service users, one per
service user for its secrets and keys; each owner's indexes share the owner as hash tag.
The writes keep them (index entry first, so a crash leaves an entry without a record,
which a list skips and drops, never a record no list shows). Records written before the
indexes existed are indexed once, by a SCAN of every node, on the first list call
(`as:ix:built` marks it done).

An admin PATCH (or a DELETE with If-Match) changes a record only if it is unchanged since it
was read: the REPLACE script compares the SHA-1 of the record's stored bytes with the one
read (sidecar/store/revisions.py) and writes, in one step, on the record's one key (one slot).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any, Callable, Literal, Sequence

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sidecar.store import cluster_trip, revisions
from sidecar.store.base import Conflict, Kind, LoginState, Page, Penalty, RefreshKey, Rotation, Store
from sidecar.store.redis_connect import ERRORS, connect, guard
from sidecar.store.redis_layout import (CHANNEL, FAIL, INDEXED, RECORDS, REPLACE, ROTATE, ROTATION_ID, P,
                                        client_index, family_key, index_key, index_of, principal_keys,
                                        principal_revoked, refresh_key, refresh_record, throttle_key, throttle_reply)
from sidecar.store.records import (Client, RefreshRecord, ServiceKey, ServiceUser, Tenant, User, from_dict,
                                   to_dict)
from sidecar.store.revisions import Editable

log = logging.getLogger("sidecar.store.redis")


class RedisStore(Store):
    def __init__(self, client: Any) -> None:
        self.r = client
        self._rotate = client.register_script(ROTATE)
        self._fail = client.register_script(FAIL)
        self._replace = client.register_script(REPLACE)
        self._listener: asyncio.Task | None = None
        # Cluster routes each key to its node: it keeps redis-py's pipelines
        self._lean = isinstance(client, redis.Redis)
        self._cluster = isinstance(client, RedisCluster)
        self._indexed = False  # records from before the list indexes are indexed (see _index_existing)

    def _marks(self, keys: list[str]) -> list[tuple]:
        """Commands reading these keys' values in order: one MGET on a single Redis, one GET
        per key on a Cluster (the keys live in different slots; a pipeline sends each to its node)."""
        return [("MGET", *keys)] if self._lean else [("GET", key) for key in keys]

    @staticmethod
    def _values(replies: list, lean: bool) -> list:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return list(replies[0]) if lean else list(replies)

    async def _round_trip(self, commands: list[tuple]) -> list:
        """Commands written at once and their raw replies read back (an error reply is
        returned, not raised): a non-transaction pipeline without its per-command objects,
        callbacks and wrappers, ~340 → ~190 µs of CPU per round trip, measured. A connection
        that fails (a restarted Redis leaves dead ones in the pool) is dropped and the round
        trip retried on a fresh one, as redis-py's pipeline does."""
        if not self._lean:
            replies = await cluster_trip.round_trip(self.r, commands) if self._cluster else None
            if replies is not None:
                return replies
            async with self.r.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return await pipe.execute(raise_on_error=False)
        pool = self.r.connection_pool
        for attempt in range(3):
            conn = await pool.get_connection()
            try:
                await conn.send_packed_command(conn.pack_commands(commands))
                replies = []
                for _ in commands:
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                return replies
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await conn.disconnect()
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    @classmethod
    def from_url(cls, url: str) -> "RedisStore":
        return cls(connect(url))

    async def ping(self) -> bool:
        """/readyz: one PING (every master of a Cluster), bounded so a stalled Redis reads as
        not ready within half a second instead of after the client's retries."""
        try:
            if self._lean:
                return bool(await asyncio.wait_for(self.r.ping(), 0.5))
            return bool(await asyncio.wait_for(self.r.ping(target_nodes=RedisCluster.PRIMARIES), 0.5))
        except ERRORS:
            return False

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
        await self.r.aclose()

    async def _get(self, key: str, cls: type) -> Any:
        raw = await self.r.get(key)
        return from_dict(cls, json.loads(raw)) if raw else None

    async def _put(self, key: str, record: Any, nx: bool = False) -> bool:
        return bool(await self.r.set(key, revisions.stored(record), nx=nx))  # the bytes its revision names

    @guard
    async def create_tenant(self, tenant: Tenant) -> None:
        await self.r.zadd(index_key("tenants", None), {tenant.id: 0})
        if not await self._put(f"{P}tenant:{tenant.id}", tenant, nx=True):
            raise Conflict(f"tenant {tenant.id} exists")

    @guard
    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self._get(f"{P}tenant:{tenant_id}", Tenant)

    @guard
    async def put_client(self, client: Client) -> None:
        await self.r.zadd(client_index(client), {client.client_id: 0})
        await self._put(f"{P}client:{client.client_id}", client)

    @guard
    async def get_client(self, client_id: str) -> Client | None:
        return await self._get(f"{P}client:{client_id}", Client)

    async def _delete(self, key: str, revision: str | None) -> bool:
        if revision is None:
            return bool(await self.r.delete(key))
        return bool(await self._replace(keys=[key], args=[revision, ""]))

    @guard
    async def delete_client(self, client_id: str, revision: str | None = None) -> bool:
        client = await self.get_client(client_id)
        deleted = await self._delete(f"{P}client:{client_id}", revision)
        if client and (deleted or revision is None):
            await self.r.zrem(client_index(client), client_id)
        return deleted

    @guard
    async def create_user(self, user: User) -> None:
        if not await self.r.set(f"{P}username:{user.tenant}:{user.username}", user.id, nx=True):
            raise Conflict(f"username {user.username} exists in tenant {user.tenant}")
        await self.r.zadd(index_key("users", user.tenant), {user.id: 0})
        await self._put(f"{P}user:{user.id}", user)

    @guard
    async def get_user(self, user_id: str) -> User | None:
        return await self._get(f"{P}user:{user_id}", User)

    @guard
    async def find_user(self, tenant: str, username: str) -> User | None:
        user_id = await self.r.get(f"{P}username:{tenant}:{username}")
        return await self.get_user(user_id.decode()) if user_id else None

    @guard
    async def delete_user(self, user_id: str, revision: str | None = None) -> bool:
        user = await self.get_user(user_id)
        if user is None:
            return False
        if not await self._delete(f"{P}user:{user_id}", revision) and revision is not None:
            return False  # it changed since: it stays, and so does its username
        await self.r.delete(f"{P}username:{user.tenant}:{user.username}")
        await self.r.zrem(index_key("users", user.tenant), user_id)
        return True

    @guard
    async def put_service_user(self, service_user: ServiceUser) -> None:
        await self.r.zadd(index_key("service_users", service_user.tenant), {service_user.id: 0})
        await self._put(f"{P}su:{service_user.id}", service_user)

    @guard
    async def get_service_user(self, service_user_id: str) -> ServiceUser | None:
        return await self._get(f"{P}su:{service_user_id}", ServiceUser)

    @guard
    async def delete_service_user(self, service_user_id: str, revision: str | None = None) -> bool:
        su = await self.get_service_user(service_user_id)
        deleted = await self._delete(f"{P}su:{service_user_id}", revision)
        if su and (deleted or revision is None):
            await self.r.zrem(index_key("service_users", su.tenant), service_user_id)
        return deleted

    @guard
    async def put_service_key(self, key: ServiceKey) -> None:
        await self.r.zadd(index_key("keys", key.service_user_id), {key.kid: 0})
        await self._put(f"{P}sukey:{key.kid}", key)

    @guard
    async def get_service_key(self, kid: str) -> ServiceKey | None:
        return await self._get(f"{P}sukey:{kid}", ServiceKey)

    @guard
    async def delete_service_key(self, kid: str) -> bool:
        key = await self.get_service_key(kid)
        deleted = bool(await self.r.delete(f"{P}sukey:{kid}"))
        if key:
            await self.r.zrem(index_key("keys", key.service_user_id), kid)
        return deleted

    # --- admin reads and updates
    async def _index_existing(self) -> None:
        """Index records written before the indexes existed: once per store (marked), by a
        SCAN of every node (a Cluster's scan_iter visits each primary), 500 keys at a time."""
        if self._indexed or await self.r.exists(INDEXED):
            self._indexed = True
            return
        for prefix, cls in {(prefix, cls) for prefix, cls in RECORDS.values()}:
            batch: list[str] = []
            async for key in self.r.scan_iter(match=prefix + "*", count=500):
                batch.append(key.decode() if isinstance(key, bytes) else key)
                if len(batch) >= 500:
                    await self._index_batch(batch, cls)
                    batch = []
            if batch:
                await self._index_batch(batch, cls)
        await self.r.set(INDEXED, "1")
        self._indexed = True

    async def _index_batch(self, keys: list[str], cls: type) -> None:
        raws = self._values(await self._round_trip([("GET", key) for key in keys]), False)
        for raw in raws:
            if raw:
                index, ident = index_of(from_dict(cls, json.loads(raw)))
                await self.r.zadd(index, {ident: 0})

    @guard
    async def list_page(self, kind: Kind, owner: str | None, limit: int, after: str | None = None) -> Page:
        await self._index_existing()
        prefix, cls = RECORDS[kind]
        index = index_key(kind, owner)
        ids = [i.decode() for i in await self.r.zrange(index, f"({after}" if after is not None else "-", "+",
                                                         bylex=True, offset=0, num=limit + 1)]
        chosen, more = ids[:limit], len(ids) > limit
        if not chosen:
            return Page([], None)
        raws = self._values(await self._round_trip([("GET", prefix + i) for i in chosen]), False)
        items, gone = [], []
        for ident, raw in zip(chosen, raws):
            (items.append(from_dict(cls, json.loads(raw))) if raw else gone.append(ident))
        if gone:  # an index entry whose record went (a write that stopped half-way): drop it
            await self.r.zrem(index, *gone)
        return Page(items, chosen[-1] if more else None)

    @guard
    async def put_tenant(self, tenant: Tenant) -> None:
        await self._put(f"{P}tenant:{tenant.id}", tenant)

    @guard
    async def put_user(self, user: User) -> None:
        await self._put(f"{P}user:{user.id}", user)

    @guard
    async def read_revised(self, kind: Editable, key: str) -> tuple[Any, str] | None:
        prefix, cls = RECORDS[kind]
        raw = await self.r.get(prefix + key)
        return (from_dict(cls, json.loads(raw)), revisions.revision(raw)) if raw else None

    @guard
    async def replace(self, record: Tenant | Client | User | ServiceUser, revision: str) -> str | None:
        data = revisions.stored(record)
        key = RECORDS[revisions.KINDS[type(record)]][0] + revisions.ident(record)
        return revisions.revision(data) if await self._replace(keys=[key], args=[revision, data]) else None

    @guard
    async def put_refresh(self, record: RefreshRecord, access: tuple[str, float]) -> None:
        key, jtis = refresh_key(record.family, record.digest), family_key(record.family, "jtis")
        at, jti_at = math.ceil(record.family_expires_at) + 1, math.ceil(access[1]) + 1
        replies = await self._round_trip([  # one round trip, one slot (the family's hash tag)
            ("HSET", key, "data", json.dumps(to_dict(record)), "used", "1" if record.used else "0",
             "exp", repr(record.family_expires_at)),
            ("EXPIREAT", key, at), ("ZADD", jtis, repr(access[1]), access[0]),
            ("EXPIREAT", jtis, jti_at, "NX"), ("EXPIREAT", jtis, jti_at, "GT")])
        self._values(replies, False)

    @guard
    async def get_refresh(self, family: str, digest: str) -> RefreshRecord | None:
        return refresh_record(*await self.r.hmget(refresh_key(family, digest), ["data", "used"]))

    @guard
    async def rotate_refresh(self, old: RefreshRecord, new: RefreshRecord, access: tuple[str, float],
                             now: float, grace: float = 0.0, sealed: str = "") -> Rotation:
        family = old.family
        keys = [refresh_key(family, old.digest), refresh_key(family, new.digest), family_key(family, "revoked"), family_key(family, "jtis"),
                family_key(family, "grace")]
        args = [json.dumps(to_dict(new)), repr(now), repr(new.family_expires_at), access[0], repr(access[1]),
                new.digest[:ROTATION_ID], sealed, str(int(grace * 1000) if sealed else 0), old.digest[:ROTATION_ID]]
        # the subject/client revocation marks live in other slots: read them in the same round trip
        marks = self._marks(principal_keys(old.subject, old.client_id))
        *replies, result = await self._round_trip([*marks, ("EVALSHA", self._rotate.sha, len(keys), *keys, *args)])
        values = self._values(replies, self._lean)
        if isinstance(result, NoScriptError):  # Redis restarted or flushed its scripts
            result = await self._rotate(keys=keys, args=args)
        elif isinstance(result, Exception):
            raise result
        outcome, data = result[0].decode(), result[1]
        record = from_dict(RefreshRecord, json.loads(data)) if data else None
        if outcome in ("ok", "replayed") and principal_revoked(values, old.subject, old.client_id, old.created):
            outcome = "revoked"
        successor = result[2].decode() if outcome == "replayed" else None
        return Rotation(outcome, record, successor)  # type: ignore[arg-type]

    @guard
    async def revoke_family(self, family: str, until: float) -> None:
        await self.r.set(family_key(family, "revoked"), "1", exat=math.ceil(max(until, time.time())) + 1)

    @guard
    async def family_revoked(self, family: str) -> bool:
        return bool(await self.r.exists(family_key(family, "revoked")))

    @guard
    async def family_access(self, family: str) -> list[tuple[str, float]]:
        rows = await self.r.zrangebyscore(family_key(family, "jtis"), time.time(), "+inf", withscores=True)
        return [(jti.decode(), score) for jti, score in rows]

    @guard
    async def join_family(self, family: str, access: tuple[str, float]) -> bool:
        jtis, jti_at = family_key(family, "jtis"), math.ceil(access[1]) + 1
        replies = await self._round_trip([  # one slot: the family's hash tag
            # expired entries go: a service exchanging often must not grow a month-long family's list
            ("ZREMRANGEBYSCORE", jtis, "-inf", repr(time.time())),
            ("ZADD", jtis, repr(access[1]), access[0]), ("EXPIREAT", jtis, jti_at, "NX"),
            ("EXPIREAT", jtis, jti_at, "GT"), ("EXISTS", family_key(family, "revoked"))])
        return not self._values(replies, False)[-1]

    @guard
    async def revoke_jti(self, jti: str, exp: float) -> None:
        await self.r.set(f"{P}jti:{jti}", "1", exat=math.ceil(max(exp, time.time())) + 1)

    @guard
    async def revoke_principal(self, kind: Literal["sub", "client"], value: str, at: float) -> None:
        await self.r.set(f"{P}revoked:{kind}:{value}", repr(at))

    @guard
    async def is_revoked(self, jti, subject, client_id, issued_at) -> bool:
        keys = [f"{P}jti:{jti or ''}", *principal_keys(subject, client_id)]
        if self._lean:
            jti_hit, *marks = await self.r.mget(keys)
        else:  # three slots: one GET to each key's node, in one round trip
            jti_hit, *marks = self._values(await self._round_trip(self._marks(keys)), False)
        return bool(jti and jti_hit) or principal_revoked(marks, subject, client_id, issued_at)

    @guard
    async def use_once(self, key: str, exp: float) -> bool:
        return bool(await self.r.set(f"{P}once:{key}", "1", nx=True, exat=math.ceil(exp) + 1))

    @guard
    async def record_failure(self, key: str, penalty: Penalty) -> float:
        until = await self._fail(keys=[throttle_key(key)],
                                 args=[f"{time.time():.3f}", penalty.free, penalty.base, penalty.cap, penalty.window])
        return float(until)

    @guard
    async def throttle_state(self, keys: Sequence[str]) -> tuple[int, tuple[float, ...]]:
        replies = await self._round_trip([("HMGET", throttle_key(key), "n", "until") for key in keys])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        states = [throttle_reply(reply) for reply in replies]
        return (states[0][0] if states else 0), tuple(until for _, until in states)

    @guard
    async def login_state(self, client_id: str | None, throttle_keys: Sequence[str],
                          refresh: RefreshKey | None = None) -> LoginState:
        commands = [("GET", f"{P}client:{client_id or ''}")]
        commands += [("HMGET", throttle_key(key), "n", "until") for key in throttle_keys]
        if refresh:
            commands.append(("HMGET", refresh_key(*refresh), "data", "used"))
        replies = await self._round_trip(commands)  # one round trip
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        raw, states = replies[0], [throttle_reply(r) for r in replies[1:1 + len(throttle_keys)]]
        client = from_dict(Client, json.loads(raw)) if raw and client_id else None
        record = refresh_record(*replies[-1]) if refresh else None
        return LoginState(client, states[0][0] if states else 0, tuple(until for _, until in states), record)

    @guard
    async def clear_failures(self, key: str) -> None:
        await self.r.delete(throttle_key(key))

    async def publish_revocation(self, message: dict) -> None:
        # PUBLISH reaches every node of a Cluster (the cluster bus carries it): a subscriber
        # on any node hears it
        try:
            await self.r.publish(CHANNEL, json.dumps(message))
        except ERRORS as exc:
            log.warning("revocation not published", extra={"error": type(exc).__name__})

    async def subscribe_revocations(self, callback: Callable[[dict], None]) -> None:
        """Listen for revocations from other workers and replicas; reconnects on failure."""
        async def listen() -> None:
            while True:
                try:
                    if not self._lean:  # a Cluster client learns its slots on first use
                        await self.r.initialize()
                    pubsub = self.r.pubsub()
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            try:
                                callback(json.loads(message["data"]))
                            except Exception:
                                log.exception("bad revocation message")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("revocation listener reconnecting", extra={"error": type(exc).__name__})
                    await asyncio.sleep(1.0)
        self._listener = asyncio.get_running_loop().create_task(listen())
