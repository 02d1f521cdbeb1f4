"""redis-py internals: checked against redis 8.1.0 (guarded by tests/test_canaries.py).
redis:// (also rediss://, redis+sentinel://, redis+cluster://) with redis.asyncio.

Keys of one refresh family share a hash tag, so the rotation script stays on one
Cluster slot; reads that span several keys (a token's revocation marks) are one MGET on
a single Redis and one GET per key on a Cluster. Every Redis failure, Cluster ones
included, surfaces as StoreUnavailable (→ 503).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from typing import Any, Awaitable, Callable, Literal, Sequence
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sidecar.store import cluster_trip
from sidecar.store.base import Conflict, LoginState, Penalty, RefreshKey, Rotation, Store, StoreUnavailable
from sidecar.store.records import (Client, RefreshRecord, ServiceKey, ServiceUser, Tenant, User, from_dict,
                                   to_dict)

log = logging.getLogger("sidecar.store.redis")
P = "as:"
CHANNEL = P + "revocations"

# KEYS: old token, new token, family revoked mark, family's access tokens, family's grace slot
# ARGV: new record, now, family expiry, access token jti, access token exp, rotation id (a prefix
#       of the new token's digest), the successor sealed under the old token, grace in ms,
#       old token's rotation id
# A used token whose recorded successor is this call's own is this very rotation run again
# (redis-py retried the script after a timeout or reconnect): "ok" again, nothing changes.
# A used token whose successor is in the grace slot, still alive: "replayed" with the sealed
# successor. Any other use of a used token is reuse: the family is revoked.
_ROTATE = """
local used = redis.call('HGET', KEYS[1], 'used')
if not used then return {'missing', ''} end
local data = redis.call('HGET', KEYS[1], 'data')
if redis.call('EXISTS', KEYS[3]) == 1 then return {'revoked', data} end
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
if exp <= tonumber(ARGV[2]) then return {'expired', data} end
local function add_access()
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  local at = math.ceil(tonumber(ARGV[5])) + 1
  if redis.call('EXPIRETIME', KEYS[4]) < at then redis.call('EXPIREAT', KEYS[4], at) end
end
if used == '1' then
  if redis.call('HGET', KEYS[1], 'next') == ARGV[6] then return {'ok', data} end
  local grace = redis.call('GET', KEYS[5])
  if grace and string.sub(grace, 1, #ARGV[9] + 1) == ARGV[9] .. ' ' then
    add_access()
    return {'replayed', data, string.sub(grace, #ARGV[9] + 2)}
  end
  redis.call('SET', KEYS[3], '1', 'EXAT', math.ceil(exp) + 1)
  return {'reused', data}
end
redis.call('HSET', KEYS[1], 'used', '1', 'next', ARGV[6])
redis.call('HSET', KEYS[2], 'data', ARGV[1], 'used', '0', 'exp', ARGV[3])
redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(ARGV[3])) + 1)
add_access()
if tonumber(ARGV[8]) > 0 then redis.call('SET', KEYS[5], ARGV[9] .. ' ' .. ARGV[7], 'PX', ARGV[8]) end
return {'ok', data}
"""
# rotation ids: 16 hex digits of a token's digest name it among its family's tokens (the
# digest is of a server-made 256-bit secret: no one picks it to collide)
_ID = 16
# every failure of the client or the server behind it: the caller answers 503
_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)

# One failure on a throttle key (a hash: n = count, until = when its delay ends).
# KEYS: the key; ARGV: now, free, base, cap, window
_FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local free = tonumber(ARGV[2])
local ends = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if n >= free then
  local delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free, 40))
  ends = tonumber(ARGV[1]) + delay
  redis.call('HSET', KEYS[1], 'until', string.format('%.3f', ends))
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return string.format('%.3f', ends)
"""


def _throttle_key(key: str) -> str:
    return f"{P}thr:{key}"


def _throttle_reply(reply: Any) -> tuple[int, float]:
    count, until = reply
    return int(count or 0), float(until or 0)


def _guard(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
    return wrapper


def _rt(family: str, digest: str) -> str:
    return f"{P}rt:{{{family}}}:{digest}"


def _fam(family: str, what: str) -> str:
    return f"{P}fam:{{{family}}}:{what}"


def _refresh_record(data: bytes | None, used: bytes | None) -> RefreshRecord | None:
    return from_dict(RefreshRecord, {**json.loads(data), "used": used == b"1"}) if data else None


def _principal_keys(subject: str | None, client_id: str | None) -> list[str]:
    return [f"{P}revoked:sub:{subject or ''}", f"{P}revoked:client:{client_id or ''}"]


def _principal_revoked(marks: list, subject: str | None, client_id: str | None, issued_at: float | None) -> bool:
    """Whether the revocation marks read from `_principal_keys` cover a token issued at `issued_at`."""
    for value, at in zip((subject, client_id), marks):
        if value and at is not None and (issued_at is None or issued_at <= float(at)):
            return True
    return False


def connect(url: str) -> Any:
    # a restarted Redis leaves dead pooled connections: retry those quickly instead of failing
    options = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, "health_check_interval": 15,
               "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
               "retry_on_error": [RedisConnectionError, RedisTimeoutError],
               # redis-py (async, plain and per Cluster node) caps a pool at 100 connections and
               # fails the 101st concurrent command at once (MaxConnectionsError) instead of
               # waiting: a worker with a few hundred requests in flight must not 503 on that
               "max_connections": 1000}
    if url.startswith("redis+sentinel://"):
        from redis.asyncio.sentinel import Sentinel
        parts = urlsplit(url)
        hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]) if ":" in h else 26379)
                 for h in parts.netloc.split("@")[-1].split(",")]
        path = [p for p in parts.path.split("/") if p]
        service = path[0] if path else "mymaster"
        db = int(path[1]) if len(path) > 1 else 0
        sentinel = Sentinel(hosts, **options)
        return sentinel.master_for(service, db=db, password=parts.password, **options)
    if url.startswith("redis+cluster://"):
        return RedisCluster.from_url("redis://" + url[len("redis+cluster://"):], **options)
    return redis.Redis.from_url(url, **options)


class RedisStore(Store):
    def __init__(self, client: Any) -> None:
        self.r = client
        self._rotate = client.register_script(_ROTATE)
        self._fail = client.register_script(_FAIL)
        self._listener: asyncio.Task | None = None
        # Cluster routes each key to its node: it keeps redis-py's pipelines
        self._lean = isinstance(client, redis.Redis)
        self._cluster = isinstance(client, RedisCluster)

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
        except _ERRORS:
            return False

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
        await self.r.aclose()

    async def _get(self, key: str, cls: type) -> Any:
        raw = await self.r.get(key)
        return from_dict(cls, json.loads(raw)) if raw else None

    async def _put(self, key: str, record: Any, nx: bool = False) -> bool:
        return bool(await self.r.set(key, json.dumps(to_dict(record)), nx=nx))

    @_guard
    async def create_tenant(self, tenant: Tenant) -> None:
        if not await self._put(f"{P}tenant:{tenant.id}", tenant, nx=True):
            raise Conflict(f"tenant {tenant.id} exists")

    @_guard
    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self._get(f"{P}tenant:{tenant_id}", Tenant)

    @_guard
    async def put_client(self, client: Client) -> None:
        await self._put(f"{P}client:{client.client_id}", client)

    @_guard
    async def get_client(self, client_id: str) -> Client | None:
        return await self._get(f"{P}client:{client_id}", Client)

    @_guard
    async def delete_client(self, client_id: str) -> bool:
        return bool(await self.r.delete(f"{P}client:{client_id}"))

    @_guard
    async def create_user(self, user: User) -> None:
        if not await self.r.set(f"{P}username:{user.tenant}:{user.username}", user.id, nx=True):
            raise Conflict(f"username {user.username} exists in tenant {user.tenant}")
        await self._put(f"{P}user:{user.id}", user)

    @_guard
    async def get_user(self, user_id: str) -> User | None:
        return await self._get(f"{P}user:{user_id}", User)

    @_guard
    async def find_user(self, tenant: str, username: str) -> User | None:
        user_id = await self.r.get(f"{P}username:{tenant}:{username}")
        return await self.get_user(user_id.decode()) if user_id else None

    @_guard
    async def delete_user(self, user_id: str) -> bool:
        user = await self.get_user(user_id)
        if user is None:
            return False
        await self.r.delete(f"{P}user:{user_id}")
        await self.r.delete(f"{P}username:{user.tenant}:{user.username}")
        return True

    @_guard
    async def put_service_user(self, service_user: ServiceUser) -> None:
        await self._put(f"{P}su:{service_user.id}", service_user)

    @_guard
    async def get_service_user(self, service_user_id: str) -> ServiceUser | None:
        return await self._get(f"{P}su:{service_user_id}", ServiceUser)

    @_guard
    async def delete_service_user(self, service_user_id: str) -> bool:
        return bool(await self.r.delete(f"{P}su:{service_user_id}"))

    @_guard
    async def put_service_key(self, key: ServiceKey) -> None:
        await self._put(f"{P}sukey:{key.kid}", key)

    @_guard
    async def get_service_key(self, kid: str) -> ServiceKey | None:
        return await self._get(f"{P}sukey:{kid}", ServiceKey)

    @_guard
    async def delete_service_key(self, kid: str) -> bool:
        return bool(await self.r.delete(f"{P}sukey:{kid}"))

    @_guard
    async def put_refresh(self, record: RefreshRecord, access: tuple[str, float]) -> None:
        key, jtis = _rt(record.family, record.digest), _fam(record.family, "jtis")
        at, jti_at = math.ceil(record.family_expires_at) + 1, math.ceil(access[1]) + 1
        replies = await self._round_trip([  # one round trip, one slot (the family's hash tag)
            ("HSET", key, "data", json.dumps(to_dict(record)), "used", "1" if record.used else "0",
             "exp", repr(record.family_expires_at)),
            ("EXPIREAT", key, at), ("ZADD", jtis, repr(access[1]), access[0]),
            ("EXPIREAT", jtis, jti_at, "NX"), ("EXPIREAT", jtis, jti_at, "GT")])
        self._values(replies, False)

    @_guard
    async def get_refresh(self, family: str, digest: str) -> RefreshRecord | None:
        return _refresh_record(*await self.r.hmget(_rt(family, digest), ["data", "used"]))

    @_guard
    async def rotate_refresh(self, old: RefreshRecord, new: RefreshRecord, access: tuple[str, float],
                             now: float, grace: float = 0.0, sealed: str = "") -> Rotation:
        family = old.family
        keys = [_rt(family, old.digest), _rt(family, new.digest), _fam(family, "revoked"), _fam(family, "jtis"),
                _fam(family, "grace")]
        args = [json.dumps(to_dict(new)), repr(now), repr(new.family_expires_at), access[0], repr(access[1]),
                new.digest[:_ID], sealed, str(int(grace * 1000) if sealed else 0), old.digest[:_ID]]
        # the subject/client revocation marks live in other slots: read them in the same round trip
        marks = self._marks(_principal_keys(old.subject, old.client_id))
        *replies, result = await self._round_trip([*marks, ("EVALSHA", self._rotate.sha, len(keys), *keys, *args)])
        values = self._values(replies, self._lean)
        if isinstance(result, NoScriptError):  # Redis restarted or flushed its scripts
            result = await self._rotate(keys=keys, args=args)
        elif isinstance(result, Exception):
            raise result
        outcome, data = result[0].decode(), result[1]
        record = from_dict(RefreshRecord, json.loads(data)) if data else None
        if outcome in ("ok", "replayed") and _principal_revoked(values, old.subject, old.client_id, old.created):
            outcome = "revoked"
        successor = result[2].decode() if outcome == "replayed" else None
        return Rotation(outcome, record, successor)  # type: ignore[arg-type]

    @_guard
    async def revoke_family(self, family: str, until: float) -> None:
        await self.r.set(_fam(family, "revoked"), "1", exat=math.ceil(max(until, time.time())) + 1)

    @_guard
    async def family_revoked(self, family: str) -> bool:
        return bool(await self.r.exists(_fam(family, "revoked")))

    @_guard
    async def family_access(self, family: str) -> list[tuple[str, float]]:
        rows = await self.r.zrangebyscore(_fam(family, "jtis"), time.time(), "+inf", withscores=True)
        return [(jti.decode(), score) for jti, score in rows]

    @_guard
    async def revoke_jti(self, jti: str, exp: float) -> None:
        await self.r.set(f"{P}jti:{jti}", "1", exat=math.ceil(max(exp, time.time())) + 1)

    @_guard
    async def revoke_principal(self, kind: Literal["sub", "client"], value: str, at: float) -> None:
        await self.r.set(f"{P}revoked:{kind}:{value}", repr(at))

    @_guard
    async def is_revoked(self, jti, subject, client_id, issued_at) -> bool:
        keys = [f"{P}jti:{jti or ''}", *_principal_keys(subject, client_id)]
        if self._lean:
            jti_hit, *marks = await self.r.mget(keys)
        else:  # three slots: one GET to each key's node, in one round trip
            jti_hit, *marks = self._values(await self._round_trip(self._marks(keys)), False)
        return bool(jti and jti_hit) or _principal_revoked(marks, subject, client_id, issued_at)

    @_guard
    async def use_once(self, key: str, exp: float) -> bool:
        return bool(await self.r.set(f"{P}once:{key}", "1", nx=True, exat=math.ceil(exp) + 1))

    @_guard
    async def record_failure(self, key: str, penalty: Penalty) -> float:
        until = await self._fail(keys=[_throttle_key(key)],
                                 args=[f"{time.time():.3f}", penalty.free, penalty.base, penalty.cap, penalty.window])
        return float(until)

    @_guard
    async def throttle_state(self, keys: Sequence[str]) -> tuple[int, tuple[float, ...]]:
        replies = await self._round_trip([("HMGET", _throttle_key(key), "n", "until") for key in keys])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        states = [_throttle_reply(reply) for reply in replies]
        return (states[0][0] if states else 0), tuple(until for _, until in states)

    @_guard
    async def login_state(self, client_id: str | None, throttle_keys: Sequence[str],
                          refresh: RefreshKey | None = None) -> LoginState:
        commands = [("GET", f"{P}client:{client_id or ''}")]
        commands += [("HMGET", _throttle_key(key), "n", "until") for key in throttle_keys]
        if refresh:
            commands.append(("HMGET", _rt(*refresh), "data", "used"))
        replies = await self._round_trip(commands)  # one round trip
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        raw, states = replies[0], [_throttle_reply(r) for r in replies[1:1 + len(throttle_keys)]]
        client = from_dict(Client, json.loads(raw)) if raw and client_id else None
        record = _refresh_record(*replies[-1]) if refresh else None
        return LoginState(client, states[0][0] if states else 0, tuple(until for _, until in states), record)

    @_guard
    async def clear_failures(self, key: str) -> None:
        await self.r.delete(_throttle_key(key))

    async def publish_revocation(self, message: dict) -> None:
        # PUBLISH reaches every node of a Cluster (the cluster bus carries it): a subscriber
        # on any node hears it
        try:
            await self.r.publish(CHANNEL, json.dumps(message))
        except _ERRORS as exc:
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
