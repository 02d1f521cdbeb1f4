"""The Wazo-style token API (seed 004) under /api/auth/0.1, against a real `auth-sidecar serve`
on the memory store and on Redis: the seed's own requests, adapted to the test's host and users."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import authz

API = "/api/auth/0.1"


@pytest.fixture(scope="module", params=["memory", "redis"])
def wazo(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"wazo-{request.param}")
    store = request.getfixturevalue("redis_server").url.replace("/0", "/4") if request.param == "redis" else None
    sidecar = admin_sidecar(tmp, {"AUTH_SIDECAR_WAZO_API__ENABLED": "true",
                                  "AUTH_SIDECAR_ACCESS_TOKEN_TTL_SECONDS": "7200"}, store_url=store)
    yield sidecar
    sidecar.stop()


def wazo_app(svc, **extra):
    """A tenant, a user and a client with the id the application already sends."""
    client_id = f"example-{uuid.uuid4().hex[:8]}"
    app = svc.admin.app(refresh_policy="offline", client_id=client_id, **extra)
    assert app.client_id == client_id
    return app


def create(svc, app, body: dict, **headers) -> httpx.Response:
    return httpx.post(svc.http + API + "/token", auth=(app.username, app.password), json=body, headers=headers)


def test_login_with_expiration_is_honoured_and_online_has_no_refresh_token(wazo):
    app = wazo_app(wazo)
    r = create(wazo, app, {"expiration": 3600, "client_id": app.client_id})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert "refresh_token" not in data
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert data["auth_id"] == app.user_id and data["metadata"]["tenant_uuid"] == app.tenant
    assert {"expires_at", "utc_expires_at", "issued_at", "session_uuid"} <= data.keys()
    assert authz(wazo.http, data["token"]).status_code == 200
    short = create(wazo, app, {"expiration": 60, "client_id": app.client_id}).json()["data"]
    claims = jwt.decode(short["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60


def test_offline_login_with_client_id_gets_a_refresh_token_bound_to_it(wazo):
    app, other = wazo_app(wazo), wazo_app(wazo)
    r = create(wazo, app, {"client_id": app.client_id, "access_type": "offline"})
    assert r.status_code == 200, r.text
    rt = r.json()["data"]["refresh_token"]
    foreign = httpx.post(wazo.http + API + "/token", json={"refresh_token": rt, "client_id": other.client_id})
    assert foreign.status_code == 400 and "another client_id" in foreign.json()["error_description"]
    fresh = httpx.post(wazo.http + API + "/token",
                       json={"expiration": 3600, "client_id": app.client_id, "refresh_token": rt})
    assert fresh.status_code == 200, fresh.text
    assert authz(wazo.http, fresh.json()["data"]["token"]).status_code == 200
    # the project's rotation rules: the old refresh token is spent, a new one is given
    assert fresh.json()["data"]["refresh_token"] != rt


def test_offline_needs_a_client_id_and_bad_credentials_are_401(wazo):
    app = wazo_app(wazo)
    r = httpx.post(wazo.http + API + "/token", auth=(app.username, app.password), json={"access_type": "offline"})
    assert r.status_code == 400 and "client_id" in r.json()["error_description"]
    bad = httpx.post(wazo.http + API + "/token", auth=(app.username, "wrong"), json={"client_id": app.client_id})
    assert bad.status_code == 401
    odd = create(wazo, app, {"client_id": app.client_id, "access_type": "sometimes"})
    assert odd.status_code == 400


def test_rotation_off_keeps_the_refresh_token_as_wazo_does(wazo):
    app = wazo_app(wazo, refresh_rotation=False)
    rt = create(wazo, app, {"client_id": app.client_id, "access_type": "offline"}).json()["data"]["refresh_token"]
    for _ in range(2):
        r = httpx.post(wazo.http + API + "/token", json={"client_id": app.client_id, "refresh_token": rt})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["refresh_token"] == rt


def test_check_and_delete_a_token(wazo):
    app = wazo_app(wazo)
    data = create(wazo, app, {"client_id": app.client_id, "access_type": "offline"}).json()["data"]
    token, rt = data["token"], data["refresh_token"]
    assert httpx.head(wazo.http + API + f"/token/{token}").status_code == 204
    got = httpx.get(wazo.http + API + f"/token/{token}")
    assert got.status_code == 200 and got.json()["data"]["auth_id"] == app.user_id
    assert httpx.head(wazo.http + API + f"/token/{rt}").status_code == 404  # a refresh token is no access token
    assert httpx.head(wazo.http + API + "/token/not-a-token").status_code == 404
    assert httpx.delete(wazo.http + API + f"/token/{token}").status_code == 200
    assert httpx.head(wazo.http + API + f"/token/{token}").status_code == 404
    assert httpx.get(wazo.http + API + f"/token/{token}").status_code == 404
    assert authz(wazo.http, token).status_code == 401


def test_refresh_token_in_x_auth_token_is_401_and_the_access_token_works(wazo):
    app = wazo_app(wazo)
    data = create(wazo, app, {"client_id": app.client_id, "access_type": "offline"}).json()["data"]
    assert httpx.get(wazo.http + "/ext_authz/x", headers={"x-auth-token": data["refresh_token"]}).status_code == 401
    assert httpx.get(wazo.http + "/ext_authz/x", headers={"x-auth-token": data["token"]}).status_code == 200


def test_the_client_decides_the_tenant(wazo):
    app = wazo_app(wazo)
    same = create(wazo, app, {"client_id": app.client_id}, **{"Wazo-Tenant": app.tenant})
    assert same.status_code == 200, same.text
    other = create(wazo, app, {"client_id": app.client_id}, **{"Wazo-Tenant": "someone-else"})
    assert other.status_code == 400 and "Wazo-Tenant" in other.json()["error_description"]
    unknown = create(wazo, app, {"client_id": "no-such-app"})
    assert unknown.status_code == 400 and "client_id" in unknown.json()["error_description"]
    nameless = create(wazo, app, {})  # no client_id and no wazo_api.default_client_id
    assert nameless.status_code == 400 and "client_id" in nameless.json()["error_description"]
