"""The stores' admin lists on a real Redis and a real Redis Cluster (and the memory store):
pages in id order that visit every record once, deletes that leave the lists, records written
before the list indexes existed found by the one-time backfill, an index entry whose
record is gone skipped and dropped, and the conditional writes under admin PATCH and DELETE."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest

from sidecar.store import revisions
from sidecar.store.memory import MemoryStore
from sidecar.store.records import Client, ServiceKey, ServiceUser, Tenant, User, to_dict
from sidecar.store.redis_store import RedisStore
from tests.redis.conftest import redis_cluster  # the session fixture, used by name

__all__ = ["redis_cluster"]
pytestmark = [pytest.mark.asyncio, pytest.mark.redis]


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    server = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
    s = RedisStore.from_url(server.url)
    yield s
    await s.close()


async def every(store, kind: str, owner: str | None, limit: int) -> tuple[list, int]:
    items, pages, after = [], 0, None
    while True:
        page = await store.list_page(kind, owner, limit, after)
        assert len(page.items) <= limit
        items += page.items
        pages += 1
        if page.after is None:
            return items, pages
        after = page.after


def client(tenant: str, i: int, su: str | None = None) -> Client:
    return Client(f"c-{uuid.uuid4().hex[:6]}-{i}", tenant, "app", ("client_credentials",), (), "d" * 64, time.time(),
                  service_user_id=su)


async def test_pages_visit_every_record_once_in_id_order(store):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await store.create_tenant(Tenant(tenant, "T", time.time()))
    clients = [client(tenant, i) for i in range(11)]
    for c in clients:
        await store.put_client(c)
    su = ServiceUser(str(uuid.uuid4()), tenant, "bot", "org", time.time())
    await store.put_service_user(su)
    await store.put_client(client(tenant, 99, su=su.id))  # a secret: not a tenant's client
    await store.put_service_key(ServiceKey("kid-" + uuid.uuid4().hex, su.id, "", "ES256", {}, time.time()))
    await store.create_user(User(str(uuid.uuid4()), tenant, "alice", "h", time.time()))

    items, pages = await every(store, "clients", tenant, 4)
    ids = [c.client_id for c in items]
    assert ids == sorted(c.client_id for c in clients) and pages == 3
    assert len((await store.list_page("secrets", su.id, 10)).items) == 1
    assert len((await store.list_page("keys", su.id, 10)).items) == 1
    assert [s.id for s in (await store.list_page("service_users", tenant, 10)).items] == [su.id]
    assert [u.username for u in (await store.list_page("users", tenant, 10)).items] == ["alice"]
    assert tenant in [t.id for t in (await every(store, "tenants", None, 50))[0]]

    await store.delete_client(ids[0])
    await store.delete_service_user(su.id)
    assert [c.client_id for c in (await every(store, "clients", tenant, 100))[0]] == ids[1:]
    assert (await store.list_page("service_users", tenant, 10)).items == []
    assert (await store.list_page("clients", "no-such-tenant", 10)).items == []


@pytest.fixture(params=["redis", "cluster"])
async def redis_store(request):
    server = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
    s = RedisStore.from_url(server.url)
    yield s
    await s.close()


async def test_records_from_before_the_indexes_are_listed(redis_store):
    """Data written by a version without list indexes: plain SETs, no index, no marker."""
    tenant = f"old-{uuid.uuid4().hex[:8]}"
    old = [client(tenant, i) for i in range(3)]
    user = User(str(uuid.uuid4()), tenant, "legacy", "h", time.time())
    await redis_store.r.set(f"as:tenant:{tenant}", json.dumps(to_dict(Tenant(tenant, "Old", time.time()))))
    for c in old:
        await redis_store.r.set(f"as:client:{c.client_id}", json.dumps(to_dict(c)))
    await redis_store.r.set(f"as:user:{user.id}", json.dumps(to_dict(user)))
    await redis_store.r.delete("as:ix:built")

    fresh = RedisStore(redis_store.r)  # a process that has not listed anything yet
    assert sorted(c.client_id for c in (await every(fresh, "clients", tenant, 2))[0]) == sorted(c.client_id for c in old)
    assert [u.id for u in (await fresh.list_page("users", tenant, 10)).items] == [user.id]
    assert tenant in [t.id for t in (await every(fresh, "tenants", None, 100))[0]]
    assert await redis_store.r.exists("as:ix:built")  # once: the next process does not scan again


async def test_an_index_entry_without_its_record_is_skipped_and_dropped(redis_store):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    kept = client(tenant, 1)
    await redis_store.put_client(kept)
    await redis_store.r.zadd(f"as:ix:{{{tenant}}}:clients", {"a-gone-client": 0})  # a write stopped half-way
    page = await redis_store.list_page("clients", tenant, 10)
    assert [c.client_id for c in page.items] == [kept.client_id] and page.after is None
    assert await redis_store.r.zscore(f"as:ix:{{{tenant}}}:clients", "a-gone-client") is None


async def test_replace_writes_only_a_record_unchanged_since_it_was_read(store):
    """The conditional write under every admin PATCH: a stale revision changes nothing, a
    deleted record stays deleted, and the revision names the stored record (the same on every
    store; a record written by an older version reads back with one too)."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await store.create_tenant(Tenant(tenant, "T", time.time()))
    c = client(tenant, 1)
    await store.put_client(c)
    got, revision = await store.read_revised("clients", c.client_id)
    assert got == c and revision == revisions.revision_of(c)

    one = await store.replace(dataclasses.replace(got, scopes=("a",)), revision)
    assert one is not None and one != revision
    assert await store.replace(dataclasses.replace(got, disabled=True), revision) is None  # stale: lost to `one`
    assert (await store.get_client(c.client_id)).scopes == ("a",) and not (await store.get_client(c.client_id)).disabled
    assert await store.read_revised("clients", c.client_id) == (dataclasses.replace(c, scopes=("a",)), one)

    assert not await store.delete_client(c.client_id, revision)  # a stale revision deletes nothing
    assert await store.get_client(c.client_id) is not None
    assert await store.delete_client(c.client_id, one)
    assert await store.replace(dataclasses.replace(got, scopes=("b",)), one) is None  # no resurrection
    assert await store.get_client(c.client_id) is None and await store.read_revised("clients", c.client_id) is None
    assert c.client_id not in [x.client_id for x in (await store.list_page("clients", tenant, 10)).items]

    user = User(str(uuid.uuid4()), tenant, "carol", "h", time.time())
    await store.create_user(user)
    _, user_revision = await store.read_revised("users", user.id)
    await store.replace(dataclasses.replace(user, scopes=("x",)), user_revision)
    assert not await store.delete_user(user.id, user_revision)
    assert await store.find_user(tenant, "carol") is not None  # its username stays with it
    tenant_record, tenant_revision = await store.read_revised("tenants", tenant)
    assert await store.replace(dataclasses.replace(tenant_record, disabled=True), tenant_revision)
    assert (await store.get_tenant(tenant)).disabled
