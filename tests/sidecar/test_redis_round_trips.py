"""The Redis store's one-write round trips (login state, refresh rotation) against a real
redis-server: dead pooled connections, lost scripts, and Cluster-style clients."""

from __future__ import annotations

import time

import pytest
import redis as redis_sync

from sidecar.store.base import Penalty
from sidecar.store.records import Client, RefreshRecord
from sidecar.store.redis_store import RedisStore

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]


def record(digest: str, family: str = "fam1") -> RefreshRecord:
    now = time.time()
    return RefreshRecord(digest=digest, family=family, client_id="c1", tenant="t1", subject="u1", scope="read",
                         family_expires_at=now + 3600, created=now)


@pytest.fixture
async def store(redis_server):
    s = RedisStore.from_url(redis_server.url)
    await s.r.flushdb()
    await s.put_client(Client("c1", "t1", "app", ("refresh_token",), ("read",), "d" * 64, time.time()))
    yield s
    await s.close()


def admin(redis_server) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(redis_server.url)


async def test_login_state_reads_client_throttle_and_refresh_record(store):
    first = record("a")
    await store.put_refresh(first, ("jti-a", time.time() + 60))
    await store.record_failure("t1:u1", Penalty(free=1, base=5, cap=60, window=60))
    state = await store.login_state("c1", ("t1:u1", "source"), ("fam1", "a"))
    assert state.client.client_id == "c1" and state.failures == 1
    assert 0 < state.blocked_until[0] - time.time() <= 5 and state.blocked_until[1] == 0
    assert state.refresh == first
    empty = await store.login_state("nope", ("t1:nobody",), ("fam1", "missing"))
    assert (empty.client, empty.failures, empty.blocked_until, empty.refresh) == (None, 0, (0,), None)


async def test_killed_connections_are_replaced(store, redis_server):
    await store.login_state("c1", ("k",))  # a pooled connection exists
    assert admin(redis_server).client_kill_filter(_type="normal", skipme=True) >= 1
    state = await store.login_state("c1", ("k",))  # the dead one fails, a fresh one answers
    assert state.client.client_id == "c1"


async def test_rotation_survives_lost_scripts_and_detects_reuse(store, redis_server):
    old, new, newer = record("a"), record("b"), record("c")
    await store.put_refresh(old, ("jti-a", time.time() + 60))
    admin(redis_server).script_flush()  # as after a Redis restart
    rotated = await store.rotate_refresh(old, new, ("jti-b", time.time() + 60), time.time())
    assert rotated.outcome == "ok" and rotated.record == old
    assert (await store.rotate_refresh(old, newer, ("jti-c", time.time() + 60), time.time())).outcome == "reused"
    assert await store.family_revoked("fam1")


async def test_a_revoked_subject_stops_rotation(store):
    old = record("a")
    await store.put_refresh(old, ("jti-a", time.time() + 60))
    await store.revoke_principal("sub", "u1", time.time())
    rotated = await store.rotate_refresh(old, record("b"), ("jti-b", time.time() + 60), time.time())
    assert rotated.outcome == "revoked"


async def test_clients_other_than_plain_redis_use_pipelines(store):
    store._lean = False  # what a Cluster client gets
    old = record("a")
    await store.put_refresh(old, ("jti-a", time.time() + 60))
    assert (await store.login_state("c1", ("k",), ("fam1", "a"))).refresh == old
    assert (await store.rotate_refresh(old, record("b"), ("jti-b", time.time() + 60), time.time())).outcome == "ok"
