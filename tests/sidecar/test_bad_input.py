"""Bad input: the RFC error, never a 500, never a stored change."""

from __future__ import annotations

import httpx
import pytest

from tests.support.oauth import ADMIN_TOKEN, login, refresh


@pytest.mark.parametrize("kwargs,error", [
    ({"data": {}}, "invalid_request"),
    ({"data": {"grant_type": ""}}, "invalid_request"),
    ({"data": {"grant_type": "password"}}, "invalid_request"),
    ({"data": {"grant_type": "password", "username": "alice"}}, "invalid_request"),
    ({"content": b"grant_type=password&grant_type=client_credentials",
      "headers": {"content-type": "application/x-www-form-urlencoded"}}, "invalid_request"),
    ({"content": b"[1,2]", "headers": {"content-type": "application/json"}}, "invalid_request"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "invalid_request"),
    ({"json": {"grant_type": "password", "username": ["a"], "password": "x"}}, "invalid_request"),
    ({"content": b"<xml/>", "headers": {"content-type": "text/xml"}}, "invalid_request"),
    ({"content": b"\xff\xfe", "headers": {"content-type": "application/x-www-form-urlencoded"}}, "invalid_request"),
    ({"data": {"grant_type": "implicit"}}, "unsupported_grant_type"),
])
def test_malformed_token_requests(svc, kwargs, error):
    app = svc.admin.app()
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret), **kwargs)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error and r.json()["error_description"]
    assert r.headers["cache-control"] == "no-store"


def test_huge_body_is_413(svc):
    app = svc.admin.app()
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                   data={"grant_type": "password", "username": "a" * 200_000, "password": "x"})
    assert r.status_code == 413 and r.json()["error"] == "invalid_request"


def test_malformed_basic_header(svc):
    r = httpx.post(svc.http + "/oauth/token", headers={"authorization": "Basic !!!"},
                   data={"grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_failed_refresh_attempts_store_nothing(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    for bad in ({"scope": "admin"}, {"expires_in": "-1"}):
        assert refresh(svc.http, app, tokens["refresh_token"], **bad).status_code == 400
    assert refresh(svc.http, app, tokens["refresh_token"]).status_code == 200  # still unused


def admin(svc):
    return svc.admin.http


def test_admin_needs_the_admin_token(svc):
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {ADMIN_TOKEN}"}):
        r = httpx.post(svc.http + "/admin/tenants", json={"id": "x", "name": "x"}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path,body,status,field", [
    ("/admin/tenants", {"id": "bad id!", "name": "x"}, 400, "id"),
    ("/admin/tenants", {"id": "ok", "name": "x", "extra": 1}, 400, "extra"),
    ("/admin/tenants", {"name": "x"}, 400, "id"),
    ("/admin/tenants/{t}/users", {"username": "u", "password": "short"}, 400, "password"),
    ("/admin/tenants/{t}/users", {"username": "u\nx", "password": "long enough"}, 400, "username"),
    ("/admin/tenants/{t}/clients", {"name": "c", "grant_types": ["implicit"], "scopes": []}, 400, "grant_types"),
    ("/admin/tenants/{t}/clients", {"name": "c", "grant_types": "password"}, 400, "grant_types"),
    ("/admin/tenants/{t}/clients", {"name": "c", "grant_types": ["password"], "scopes": ["a b"]}, 400, "scopes"),
    ("/admin/tenants/{t}/service-users", {"name": "s"}, 400, "org_id"),
    ("/admin/tenants/nope/users", {"username": "u", "password": "long enough"}, 404, "nope"),
    ("/admin/service-users/nope/keys", {}, 404, "nope"),
    ("/admin/service-users/nope/secrets", {}, 404, "nope"),
])
def test_admin_bad_bodies_name_the_field(svc, path, body, status, field):
    tenant = svc.admin.app().tenant
    r = admin(svc).post(path.replace("{t}", tenant), json=body)
    assert r.status_code == status, r.text
    assert field in r.json()["error_description"]


def test_admin_conflicts_and_not_json(svc):
    app = svc.admin.app()
    assert admin(svc).post("/admin/tenants", json={"id": app.tenant, "name": "again"}).status_code == 409
    dup = admin(svc).post(f"/admin/tenants/{app.tenant}/users", json={"username": "alice", "password": "another one"})
    assert dup.status_code == 409
    assert login(svc.http, app).status_code == 200  # the original alice is untouched
    r = admin(svc).post("/admin/tenants", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert admin(svc).delete(f"/admin/tenants/{app.tenant}/users/nope").status_code == 404
    assert admin(svc).get("/admin/service-users/nope/keys/k").status_code == 404
