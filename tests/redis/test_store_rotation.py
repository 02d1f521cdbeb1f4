"""Refresh rotation at the store, on every store: a retried rotation is the first one again,
the grace period gives the same successor back, reuse after it revokes the family.
Redis-backed stores also answer every read on a real Cluster (keys of one operation in
different slots) and turn every failure into StoreUnavailable."""

from __future__ import annotations

import asyncio
import time

import pytest

from sidecar.store import StoreUnavailable
from sidecar.store.memory import MemoryStore
from sidecar.store.records import Client, RefreshRecord, Tenant, User
from sidecar.store.redis_layout import family_key
from sidecar.store.redis_store import RedisStore

pytestmark = [pytest.mark.asyncio]


def record(digest: str, family: str = "fam1", subject: str = "u1") -> RefreshRecord:
    now = time.time()
    return RefreshRecord(digest=digest * 64, family=family, client_id="c1", tenant="t1", subject=subject,
                         scope="read", family_expires_at=now + 3600, created=now)


def access(jti: str) -> tuple[str, float]:
    return (jti, time.time() + 60)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request):
    if request.param == "memory":
        s = MemoryStore()
    else:
        server = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
        s = RedisStore.from_url(server.url)
    await s.put_client(Client("c1", "t1", "app", ("refresh_token",), ("read",), "d" * 64, time.time()))
    yield s
    await s.close()


async def fresh_family(store, name: str) -> RefreshRecord:
    first = record("a", family=f"{name}-{time.monotonic_ns()}")
    await store.put_refresh(first, access("jti-a"))
    return first


async def test_the_same_rotation_asked_again_is_ok_and_changes_nothing(store):
    old = await fresh_family(store, "retry")
    new = record("b", family=old.family)
    first = await store.rotate_refresh(old, new, access("jti-b"), time.time())
    again = await store.rotate_refresh(old, new, access("jti-b"), time.time())
    assert (first.outcome, again.outcome) == ("ok", "ok")
    assert not await store.family_revoked(old.family)
    assert (await store.get_refresh(old.family, new.digest)).used is False


async def test_within_the_grace_period_the_same_successor_comes_back(store):
    old = await fresh_family(store, "grace")
    first = await store.rotate_refresh(old, record("b", old.family), access("jti-b"), time.time(),
                                       grace=5, sealed="sealed-successor")
    replay = await store.rotate_refresh(old, record("c", old.family), access("jti-c"), time.time(),
                                        grace=5, sealed="other")
    assert (first.outcome, replay.outcome, replay.successor) == ("ok", "replayed", "sealed-successor")
    assert not await store.family_revoked(old.family)
    # the replay's access token belongs to the family: revoking the family covers it
    assert "jti-c" in {jti for jti, _ in await store.family_access(old.family)}
    assert await store.get_refresh(old.family, "c" * 64) is None  # no second successor


async def test_after_the_grace_period_reuse_revokes_the_family(store):
    old = await fresh_family(store, "late")
    await store.rotate_refresh(old, record("b", old.family), access("jti-b"), time.time(), grace=0.2, sealed="s")
    await asyncio.sleep(0.3)
    late = await store.rotate_refresh(old, record("c", old.family), access("jti-c"), time.time(), grace=0.2,
                                      sealed="s")
    assert late.outcome == "reused" and await store.family_revoked(old.family)


async def test_without_a_grace_period_any_reuse_revokes(store):
    old = await fresh_family(store, "nograce")
    await store.rotate_refresh(old, record("b", old.family), access("jti-b"), time.time())
    assert (await store.rotate_refresh(old, record("c", old.family), access("jti-c"), time.time())).outcome \
        == "reused"
    assert await store.family_revoked(old.family)


async def test_the_grace_period_covers_only_the_last_rotated_token(store):
    old = await fresh_family(store, "older")
    middle = record("b", old.family)
    await store.rotate_refresh(old, middle, access("jti-b"), time.time(), grace=5, sealed="b")
    await store.rotate_refresh(middle, record("c", old.family), access("jti-c"), time.time(), grace=5, sealed="c")
    assert (await store.rotate_refresh(old, record("d", old.family), access("jti-d"), time.time(), grace=5,
                                       sealed="d")).outcome == "reused"


async def test_revocation_reads_span_slots(store):
    """jti, subject and client marks: three keys, three slots on a Cluster."""
    now = time.time()
    assert not await store.is_revoked("j1", "sub-x", "c1", now)
    await store.revoke_jti("j1", now + 60)
    await store.revoke_principal("sub", "sub-y", now + 1)
    assert await store.is_revoked("j1", "sub-x", "c1", now)
    assert await store.is_revoked("j2", "sub-y", "c1", now)
    assert not await store.is_revoked("j2", "sub-x", "c1", now)
    old = await fresh_family(store, "subject")
    revoked = record("a", old.family, subject="sub-y")
    await store.put_refresh(revoked, access("jti-z"))
    assert (await store.rotate_refresh(revoked, record("b", old.family), access("j"), time.time())).outcome \
        == "revoked"


async def test_login_state_and_admin_records(store):
    state = await store.login_state("c1", ("t1:nobody",))
    assert state.client.client_id == "c1" and state.failures == 0
    tenant = f"t-{time.monotonic_ns()}"
    await store.create_tenant(Tenant(tenant, tenant, time.time()))
    user = User(f"u-{tenant}", tenant, "alice", "hash", time.time())
    await store.create_user(user)
    assert (await store.find_user(tenant, "alice")) == user
    assert await store.delete_user(user.id) and await store.find_user(tenant, "alice") is None


async def test_hundreds_of_concurrent_operations(store):
    """More commands in flight than redis-py's default pool size (100): none fails."""
    clients = await asyncio.gather(*(store.get_client("c1") for _ in range(300)))
    assert {c.client_id for c in clients} == {"c1"}


async def test_a_new_cluster_client_writes_first(redis_cluster):
    """A fresh client knows no slots yet: its first command is a write, not a read."""
    store = RedisStore.from_url(redis_cluster.url)
    try:
        first = record("a", family=f"first-{time.monotonic_ns()}")
        await store.put_refresh(first, access("jti-a"))
        assert await store.get_refresh(first.family, first.digest) == first
    finally:
        await store.close()


async def test_an_unreachable_cluster_is_store_unavailable():
    from tests.support.net import free_port
    store = RedisStore.from_url(f"redis+cluster://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailable):
        await store.get_client("c1")
    with pytest.raises(StoreUnavailable):
        await store.is_revoked("j", "s", "c", time.time())
    assert await store.ping() is False


async def test_cluster_round_trip_and_redirects(redis_cluster):
    """The lean Cluster round trip (sidecar/store/cluster_trip.py; the redis-py members it
    drives: tests/test_canaries.py) is taken once the slot map is known, and a reply it cannot
    handle (MOVED from a node that does not own the key) falls back to redis-py's pipeline,
    with the right answer."""
    from sidecar.store import cluster_trip
    store = RedisStore.from_url(redis_cluster.url)
    try:
        await store.put_client(Client("c1", "t1", "app", ("refresh_token",), ("read",), "d" * 64, time.time()))
        await store.r.initialize()
        commands = [("GET", "as:client:c1"), ("GET", "as:fail:nobody"), ("GET", "as:jti:x")]
        replies = await cluster_trip.round_trip(store.r, commands)
        assert replies is not None and replies[0] and replies[1:] == [None, None]

        owner = store.r.get_node_from_key("as:client:c1")
        other = next(n for n in store.r.get_primaries() if n != owner)
        real = store.r.get_node_from_key
        store.r.get_node_from_key = lambda key, replica=False: other  # a stale slot map
        try:
            assert await cluster_trip.round_trip(store.r, commands[:1]) is None  # MOVED: not handled here
            assert (await store.login_state("c1", ("nobody",))).client.client_id == "c1"  # the pipeline answers
        finally:
            store.r.get_node_from_key = real
    finally:
        await store.close()


async def test_an_exchanged_token_joins_its_family_and_goes_with_it(store):
    family = (await fresh_family(store, "exchange")).family
    assert await store.join_family(family, access("jti-x")) is True
    assert {jti for jti, _ in await store.family_access(family)} == {"jti-a", "jti-x"}
    await store.revoke_family(family, time.time() + 60)
    # joining a revoked family still records the token (its revocation may be reading the list
    # right now) and says so: the exchange is refused
    assert await store.join_family(family, access("jti-y")) is False
    assert "jti-y" in {jti for jti, _ in await store.family_access(family)}


async def test_joining_drops_the_family_entries_that_expired(store):
    family = (await fresh_family(store, "prune")).family
    await store.join_family(family, ("old", time.time() - 1))
    await store.join_family(family, access("new"))
    assert {jti for jti, _ in await store.family_access(family)} == {"jti-a", "new"}
    if isinstance(store, MemoryStore):
        assert "old" not in {jti for jti, _ in store.family_jtis[family]}
    else:
        jtis = family_key(family, "jtis")
        assert await store.r.zscore(jtis, "new") is not None and await store.r.zscore(jtis, "old") is None
