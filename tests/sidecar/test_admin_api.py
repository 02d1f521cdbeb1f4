"""The admin API's reads, pagination, PATCH and audit trail against the real `auth-sidecar
serve`, over the memory store and a real Redis (the `svc` fixture): what is read back is
metadata only, a read with If-None-Match naming the record's ETag is 304, lists page through
every record exactly once, a disabled client, user, service user or tenant gets no token, and
every write leaves one secret-free audit line."""

from __future__ import annotations

import hashlib
import json
import uuid

import httpx
import pytest

from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN, authz, login


def api(svc) -> httpx.Client:
    return svc.admin.http


def get(svc, path: str, **params) -> dict:
    r = api(svc).get(path, params=params)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def patch(svc, path: str, body: dict, status: int = 200) -> dict:
    r = api(svc).patch(path, json=body)
    assert r.status_code == status, (path, body, r.status_code, r.text)
    return r.json()


def token(svc, client_id: str, secret: str, **data) -> httpx.Response:
    return httpx.post(svc.http + "/oauth/token", auth=(client_id, secret), data=data)


def page_all(svc, path: str, limit: int) -> tuple[list[dict], int]:
    items, pages, cursor = [], 0, None
    while True:
        answer = get(svc, path, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert len(answer["items"]) <= limit
        items += answer["items"]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            return items, pages


@pytest.fixture(scope="module")
def world(svc):
    """A tenant with a client and a user (svc.admin.app), a service user with a secret and a key."""
    app = svc.admin.app()
    su = svc.admin.post(f"/admin/tenants/{app.tenant}/service-users",
                        {"name": "robot", "org_id": "org-1", "project_ids": ["p1"], "scopes": ["read"]})
    secret = svc.admin.post(f"/admin/service-users/{su['id']}/secrets", {"title": "ci"})
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "deploy", "alg": "ES256"})
    return app, su, secret, key


def test_reads_answer_metadata_and_never_a_secret(svc, world):
    app, su, secret, key = world
    tenant = get(svc, f"/admin/tenants/{app.tenant}")
    assert tenant["id"] == app.tenant and tenant["disabled"] is False and tenant["created"].endswith("Z")
    client = get(svc, f"/admin/tenants/{app.tenant}/clients/{app.client_id}")
    assert client["grant_types"] == ["password", "refresh_token"] and client["disabled"] is False
    user = get(svc, f"/admin/tenants/{app.tenant}/users/{app.user_id}")
    assert user["username"] == "alice" and user["org_id"] == "org-1" and user["project_ids"] == ["p1"]
    for path in (f"/admin/service-users/{su['id']}", f"/admin/tenants/{app.tenant}/service-users/{su['id']}"):
        assert get(svc, path)["scopes"] == ["read"]
    secrets = get(svc, f"/admin/service-users/{su['id']}/secrets")
    assert [s["client_id"] for s in secrets["items"]] == [secret["client_id"]] and secrets["items"][0]["title"] == "ci"
    keys = get(svc, f"/admin/service-users/{su['id']}/keys")
    assert [(k["kid"], k["alg"], k["title"]) for k in keys["items"]] == [(key["kid"], "ES256", "deploy")]
    # a service user's secret is not one of the tenant's clients
    clients = get(svc, f"/admin/tenants/{app.tenant}/clients")["items"]
    assert [c["client_id"] for c in clients] == [app.client_id]

    everything = json.dumps([tenant, client, user, secrets, keys, clients])
    for secret_value in (app.client_secret, secret["client_secret"], app.password, key["private_key"],
                         hashlib.sha256(app.client_secret.encode()).hexdigest()):
        assert secret_value not in everything
    assert "digest" not in everything and "hash" not in everything and "PRIVATE" not in everything


def test_lists_page_through_every_record_once(svc):
    app = svc.admin.app()
    made = {app.client_id} | {svc.admin.post(f"/admin/tenants/{app.tenant}/clients",
                                             {"name": f"c{i}", "grant_types": ["client_credentials"]})["client_id"]
                              for i in range(6)}
    items, pages = page_all(svc, f"/admin/tenants/{app.tenant}/clients", limit=3)
    ids = [c["client_id"] for c in items]
    assert sorted(ids) == ids and set(ids) == made and len(ids) == 7 and pages == 3
    assert get(svc, f"/admin/tenants/{app.tenant}/clients", limit=7)["next_cursor"] is None
    # the tenants list (other modules' tenants share a Redis): ours among them, each once
    tenants, _ = page_all(svc, "/admin/tenants", limit=2)
    names = [t["id"] for t in tenants]
    assert app.tenant in names and len(names) == len(set(names)) and names == sorted(names)
    users = get(svc, f"/admin/tenants/{app.tenant}/users")
    assert [u["id"] for u in users["items"]] == [app.user_id] and users["next_cursor"] is None
    # a deleted record leaves its list
    gone = sorted(made)[0]
    assert api(svc).delete(f"/admin/tenants/{app.tenant}/clients/{gone}").status_code == 204
    assert gone not in [c["client_id"] for c in page_all(svc, f"/admin/tenants/{app.tenant}/clients", 100)[0]]


@pytest.mark.parametrize("query,field", [({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                                         ({"limit": "ten"}, "limit"), ({"cursor": "x" * 513}, "cursor")])
def test_bad_paging_is_a_400_naming_it(svc, world, query, field):
    r = api(svc).get("/admin/tenants", params=query)
    assert r.status_code == 400 and field in r.json()["error_description"], r.text


def test_unknown_ids_are_404_and_unknown_paths_json(svc, world):
    app, su, _, _ = world
    for path in ("/admin/tenants/nope", "/admin/tenants/nope/clients", f"/admin/tenants/{app.tenant}/users/nope",
                 f"/admin/tenants/{app.tenant}/clients/nope", "/admin/service-users/nope/secrets",
                 f"/admin/tenants/nope/service-users/{su['id']}", "/admin/nothing-here"):
        r = api(svc).get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (path, r.text)
    r = api(svc).put(f"/admin/tenants/{app.tenant}", json={})
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "PATCH"}
    assert api(svc).patch("/admin/tenants/nope", json={"disabled": True}).status_code == 404


def test_if_none_match_answers_304_while_the_record_is_unchanged(svc, world):
    """RFC 9110 §13.1.2 on every GET of one record: a matching tag (weakly compared), one of a
    list, or `*` → 304 with the ETag and no body; anything else → 200 with the record."""
    app, su, _, _ = world
    t = f"/admin/tenants/{app.tenant}"
    for path in (t, f"{t}/clients/{app.client_id}", f"{t}/users/{app.user_id}", f"/admin/service-users/{su['id']}",
                 f"{t}/service-users/{su['id']}"):
        first = api(svc).get(path)
        etag = first.headers["etag"]
        for named in (etag, f"W/{etag}", f'"other", {etag}', "*", f'W/"x" ,  {etag} ,'):
            r = api(svc).get(path, headers={"if-none-match": named})
            assert r.status_code == 304, (path, named, r.status_code, r.text)
            assert r.headers["etag"] == etag and r.content == b"" and "content-type" not in r.headers
            assert api(svc).head(path, headers={"if-none-match": named}).status_code == 304
        for other in ('"other"', 'W/"other", "0123"', "not-a-tag", f"{etag[1:-1]}", f"*, {etag}", ""):
            r = api(svc).get(path, headers={"if-none-match": other})
            assert r.status_code == 200 and r.json() == first.json() and r.headers["etag"] == etag, (path, other)


def test_if_none_match_sees_a_change_and_a_missing_record_stays_404(svc):
    app = svc.admin.app()
    path = f"/admin/tenants/{app.tenant}/clients/{app.client_id}"
    etag = api(svc).get(path).headers["etag"]
    changed = api(svc).patch(path, json={"scopes": ["read"]})
    r = api(svc).get(path, headers={"if-none-match": etag})  # the copy held is stale: the new record
    assert r.status_code == 200 and r.json()["scopes"] == ["read"] and r.headers["etag"] == changed.headers["etag"]
    assert api(svc).get(path, headers={"if-none-match": changed.headers["etag"]}).status_code == 304
    assert api(svc).delete(path).status_code == 204
    for named in (changed.headers["etag"], "*"):
        r = api(svc).get(path, headers={"if-none-match": named})
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    r = httpx.get(svc.http + f"/admin/tenants/{app.tenant}", headers={"if-none-match": "*"})  # no admin token
    assert r.status_code == 401


@pytest.mark.parametrize("body,field", [
    ({"scopes": None}, "scopes"), ({"scopes": ["a b"]}, "scopes"), ({"grant_types": ["implicit"]}, "grant_types"),
    ({"grant_types": []}, "grant_types"), ({"disabled": "yes"}, "disabled"), ({"secret": "x"}, "secret")])
def test_patch_refuses_bad_values_naming_the_field(svc, world, body, field):
    app = world[0]
    r = api(svc).patch(f"/admin/tenants/{app.tenant}/clients/{app.client_id}", json=body)
    assert r.status_code == 400 and field in r.json()["error_description"], r.text


def test_patch_needs_json(svc, world):
    app = world[0]
    r = api(svc).patch(f"/admin/tenants/{app.tenant}", content=b'{"name": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_a_disabled_client_gets_invalid_client_and_loses_its_tokens(svc):
    app = svc.admin.app()
    path = f"/admin/tenants/{app.tenant}/clients/{app.client_id}"
    assert patch(svc, path, {"scopes": ["read"]})["scopes"] == ["read"]
    first = login(svc.http, app, scope="read")
    assert first.status_code == 200 and first.json()["scope"] == "read"
    assert login(svc.http, app, scope="write").status_code == 400  # the narrowed scopes hold
    access = first.json()["access_token"]
    assert authz(svc.http, access).status_code == 200

    assert patch(svc, path, {"disabled": True})["disabled"] is True
    refused = login(svc.http, app)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert authz(svc.http, access).status_code == 401  # disabling revoked what it had
    refreshed = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                           data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]})
    assert refreshed.status_code == 401 and refreshed.json()["error"] == "invalid_client"

    assert patch(svc, path, {"disabled": False})["disabled"] is False
    assert login(svc.http, app).status_code == 200
    assert get(svc, path)["scopes"] == ["read"]


def test_a_disabled_user_or_a_new_password(svc):
    app = svc.admin.app()
    path = f"/admin/tenants/{app.tenant}/users/{app.user_id}"
    old = login(svc.http, app)
    assert old.status_code == 200
    changed = patch(svc, path, {"password": "a new password", "project_ids": ["p2"], "org_id": None})
    assert changed["project_ids"] == ["p2"] and changed["org_id"] is None and "password" not in json.dumps(changed)
    assert login(svc.http, app).json()["error"] == "invalid_grant"  # the old password
    assert authz(svc.http, old.json()["access_token"]).status_code == 401  # a new password revokes
    assert login(svc.http, app, password="a new password").status_code == 200

    patch(svc, path, {"disabled": True})
    r = login(svc.http, app, password="a new password")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    patch(svc, path, {"disabled": False})
    assert login(svc.http, app, password="a new password").status_code == 200


def test_a_disabled_service_user_gets_no_token(svc):
    app = svc.admin.app()
    su = svc.admin.post(f"/admin/tenants/{app.tenant}/service-users", {"name": "bot", "org_id": "o", "scopes": ["read"]})
    secret = svc.admin.post(f"/admin/service-users/{su['id']}/secrets", {})
    assert token(svc, secret["client_id"], secret["client_secret"], grant_type="client_credentials").status_code == 200
    assert patch(svc, f"/admin/service-users/{su['id']}", {"disabled": True, "scopes": ["read", "x"]})["disabled"]
    r = token(svc, secret["client_id"], secret["client_secret"], grant_type="client_credentials")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    patch(svc, f"/admin/tenants/{app.tenant}/service-users/{su['id']}", {"disabled": False})
    assert token(svc, secret["client_id"], secret["client_secret"], grant_type="client_credentials").status_code == 200


def test_a_disabled_tenant_gets_no_token(svc):
    app = svc.admin.app()
    su = svc.admin.post(f"/admin/tenants/{app.tenant}/service-users", {"name": "bot", "org_id": "o"})
    secret = svc.admin.post(f"/admin/service-users/{su['id']}/secrets", {})
    assert patch(svc, f"/admin/tenants/{app.tenant}", {"disabled": True, "name": "Paused"})["name"] == "Paused"
    r = login(svc.http, app)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = token(svc, secret["client_id"], secret["client_secret"], grant_type="client_credentials")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    late = svc.admin.post(f"/admin/tenants/{app.tenant}/clients", {"name": "late", "grant_types": ["client_credentials"]})
    r = token(svc, late["client_id"], late["client_secret"], grant_type="client_credentials")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"  # made while the tenant was disabled

    patch(svc, f"/admin/tenants/{app.tenant}", {"disabled": False})
    assert login(svc.http, app).status_code == 200
    assert token(svc, late["client_id"], late["client_secret"], grant_type="client_credentials").status_code == 200
    assert token(svc, secret["client_id"], secret["client_secret"], grant_type="client_credentials").status_code == 200


def _audit_lines(svc) -> list[dict]:
    lines = [json.loads(line) for line in svc.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "audit"]


def test_every_admin_write_leaves_one_secret_free_audit_line(svc):
    rid = f"req-{uuid.uuid4().hex}"
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    r = api(svc).post("/admin/tenants", json={"id": tenant, "name": "Audited"}, headers={"x-request-id": rid})
    assert r.status_code == 201 and r.headers["x-request-id"] == rid
    created = svc.admin.post(f"/admin/tenants/{tenant}/clients", {"name": "web", "grant_types": ["password"]})
    user = svc.admin.post(f"/admin/tenants/{tenant}/users", {"username": "bob", "password": "s3cret-password!"})
    patch(svc, f"/admin/tenants/{tenant}/users/{user['id']}", {"password": "an0ther-password!"})
    assert api(svc).delete(f"/admin/tenants/{tenant}/clients/{created['client_id']}").status_code == 204
    assert api(svc).post("/admin/tenants", json={"id": tenant, "name": "again"}).status_code == 409
    assert httpx.post(svc.http + "/admin/tenants", json={"id": "x", "name": "x"},
                      headers={"authorization": "Bearer wrong"}).status_code == 401
    api(svc).get(f"/admin/tenants/{tenant}")  # a read: no audit line

    def mine() -> list[dict]:
        return [line for line in _audit_lines(svc)
                if tenant in line["target"] or line["request_id"] == rid or line["result"] in (401, 409)]
    wait_until(lambda: len(mine()) >= 7, 10, "audit lines")
    lines = mine()
    fingerprint = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:12]
    first = next(line for line in lines if line["request_id"] == rid)
    assert first["action"] == "POST create_tenant" and first["target"] == "/admin/tenants"
    assert first["result"] == 201 and first["admin"] == fingerprint
    results = sorted((line["action"], line["result"]) for line in lines if tenant in line["target"])
    assert ("PATCH patch_user", 200) in results and ("DELETE delete_client", 204) in results
    assert ("POST create_client", 201) in results and ("POST create_user", 201) in results
    assert any(line["result"] == 401 and line["admin"] == "-" for line in lines)
    assert any(line["result"] == 409 and line["action"] == "POST create_tenant" for line in lines)
    assert not any(line["action"].startswith("GET") for line in _audit_lines(svc))
    logs = svc.logs()
    for secret in (created["client_secret"], "s3cret-password!", "an0ther-password!", ADMIN_TOKEN):
        assert secret not in logs
    for line in lines:
        assert {"action", "target", "result", "request_id", "admin"} <= set(line)
