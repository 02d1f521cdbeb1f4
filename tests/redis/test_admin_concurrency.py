"""Admin updates under concurrency, through a real `auth-sidecar serve` on each store (memory,
a real Redis, a real Redis Cluster; the Redis ones with two workers, so the writes race across
processes): PATCHes of different fields of one record sent at once all survive, a PATCH racing
a DELETE never brings the record back, and the HTTP conditional requests (ETag, If-Match, 412)
of RFC 9110."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.redis.conftest import redis_cluster  # the session fixture, used by name
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN

__all__ = ["redis_cluster"]
pytestmark = pytest.mark.redis
ROUNDS = 8


@pytest.fixture(scope="module", params=["memory", "redis", "cluster"])
def svc(request, tmp_path_factory):
    env, args = {}, []
    if request.param != "memory":
        server = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
        env, args = {"AUTH_SIDECAR_STORE_URL": server.url}, ["--workers", "2"]
    sidecar = admin_sidecar(tmp_path_factory.mktemp(f"cas-{request.param}"), env, args=args)
    yield sidecar
    sidecar.stop()
    assert "Traceback" not in sidecar.logs(), sidecar.logs()[-3000:]


def client(svc) -> httpx.Client:
    return httpx.Client(base_url=svc.http, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


def at_once(calls: list) -> list[httpx.Response]:
    """Each call (a function of an httpx client) in its own thread, released together."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        return call()
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def new_client(svc, **extra) -> tuple[str, str, dict]:
    """(its tenant, its admin path, the 201 answer)"""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    svc.admin.post("/admin/tenants", {"id": tenant, "name": tenant})
    made = svc.admin.post(f"/admin/tenants/{tenant}/clients", {"name": "web", "grant_types": ["password"], **extra})
    return tenant, f"/admin/tenants/{tenant}/clients/{made['client_id']}", made


def fields(round_: int) -> dict:
    """One value per client field for this round, each different from the round before."""
    odd = bool(round_ % 2)
    return {"scopes": [f"s{round_}"], "exchange_audiences": [f"aud{round_}"], "disabled": odd,
            "dpop_bound_access_tokens": odd, "tls_client_certificate_bound_access_tokens": odd,
            "grant_types": ["password", "refresh_token"] if odd else ["password"]}


def test_concurrent_patches_of_different_fields_all_survive(svc):
    _, path, _ = new_client(svc)
    clients = [client(svc) for _ in fields(0)]
    for round_ in range(1, ROUNDS + 1):
        wanted = fields(round_)
        answers = at_once([lambda c=c, f=f: c.patch(path, json={f: wanted[f]}) for c, f in zip(clients, wanted)])
        assert [r.status_code for r in answers] == [200] * len(wanted), [r.text for r in answers]
        got = svc.admin.http.get(path).json()
        assert {f: got[f] for f in wanted} == wanted, f"round {round_}: a PATCH was lost"
        # each answer shows its own field as set, and an ETag of its own
        assert all(r.json()[f] == wanted[f] for r, f in zip(answers, wanted))
        assert len({r.headers["etag"] for r in answers}) == len(answers)


def test_a_patch_racing_a_delete_never_brings_the_record_back(svc):
    clients = [client(svc) for _ in range(6)]
    for round_ in range(ROUNDS):
        _, path, _ = new_client(svc)
        calls = [lambda c=c, i=i: c.patch(path, json={"scopes": [f"s{i}"]}) for i, c in enumerate(clients[:-1])]
        answers = at_once([*calls, lambda: clients[-1].delete(path)])
        assert answers[-1].status_code == 204
        assert {r.status_code for r in answers[:-1]} <= {200, 404}, [r.text for r in answers]
        assert all(r.json()["error"] == "not_found" for r in answers[:-1] if r.status_code == 404)
        after = svc.admin.http.get(path)
        assert after.status_code == 404, f"round {round_}: the deleted client is back: {after.text}"
        listed = svc.admin.http.get(path.rsplit("/", 1)[0]).json()["items"]
        assert path.rsplit("/", 1)[1] not in [c["client_id"] for c in listed]


def test_if_match_makes_a_patch_or_delete_conditional(svc):
    _, path, _ = new_client(svc, scopes=["read"])
    http = svc.admin.http
    first = http.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")

    changed = http.patch(path, json={"scopes": ["write"]}, headers={"if-match": etag})
    assert changed.status_code == 200 and changed.json()["scopes"] == ["write"]
    assert changed.headers["etag"] != etag and http.get(path).headers["etag"] == changed.headers["etag"]

    for stale in (etag, f"W/{changed.headers['etag']}", "not-a-tag", f'"x", {etag}'):
        refused = http.patch(path, json={"scopes": ["admin"]}, headers={"if-match": stale})
        assert refused.status_code == 412, (stale, refused.text)
        assert refused.json()["error"] == "precondition_failed" and "If-Match" in refused.json()["error_description"]
        refused = http.delete(path, headers={"if-match": stale})
        assert refused.status_code == 412, (stale, refused.text)
    now = http.get(path)
    assert now.json() == changed.json() and now.headers["etag"] == changed.headers["etag"]  # nothing changed

    listed = http.patch(path, json={"disabled": True}, headers={"if-match": f'"other", {now.headers["etag"]}'})
    assert listed.status_code == 200 and listed.json()["disabled"] is True
    star = http.patch(path, json={"disabled": False}, headers={"if-match": "*"})
    assert star.status_code == 200 and star.headers["etag"] != listed.headers["etag"]
    assert http.delete(path, headers={"if-match": star.headers["etag"]}).status_code == 204
    gone = http.patch(path, json={"disabled": True}, headers={"if-match": "*"})
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert http.delete(path, headers={"if-match": "*"}).status_code == 404


def test_every_record_kind_answers_an_etag_that_each_update_changes(svc):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    svc.admin.post("/admin/tenants", {"id": tenant, "name": "T"})
    user = svc.admin.post(f"/admin/tenants/{tenant}/users", {"username": "bob", "password": "correct horse"})
    su = svc.admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "bot", "org_id": "o"})
    http = svc.admin.http
    for path, change in ((f"/admin/tenants/{tenant}", lambda i: {"name": f"T{i}"}),
                         (f"/admin/tenants/{tenant}/users/{user['id']}", lambda i: {"scopes": [f"s{i}"]}),
                         (f"/admin/service-users/{su['id']}", lambda i: {"project_ids": [f"p{i}"]})):
        seen = [http.get(path).headers["etag"]]
        for i in range(3):
            r = http.patch(path, json=change(i), headers={"if-match": seen[-1]})
            assert r.status_code == 200, (path, r.text)
            assert http.get(path).headers["etag"] == r.headers["etag"]
            seen.append(r.headers["etag"])
        assert len(set(seen)) == len(seen), path
        r = http.patch(path, json=change(9), headers={"if-match": seen[0]})
        assert r.status_code == 412 and http.get(path).headers["etag"] == seen[-1], path


def test_a_tenant_disabled_while_its_client_is_patched_keeps_both(svc):
    """The tenant's `disabled` is copied into its clients (the token path reads the copy): a
    client PATCH at the same time neither loses the copy nor is lost to it."""
    for round_ in range(4):
        tenant, path, made = new_client(svc, grant_types=["client_credentials"])
        one, two = client(svc), client(svc)
        answers = at_once([lambda: one.patch(f"/admin/tenants/{tenant}", json={"disabled": True}),
                           lambda: two.patch(path, json={"scopes": [f"s{round_}"]})])
        assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
        assert svc.admin.http.get(path).json()["scopes"] == [f"s{round_}"]
        r = httpx.post(svc.http + "/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(made["client_id"], made["client_secret"]))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", f"round {round_}: {r.text}"
