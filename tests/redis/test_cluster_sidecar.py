"""The sidecar (two workers) on a real Redis Cluster: every grant, rotation and reuse
detection, the grace period, revocation reaching both workers' caches, introspection and the
admin API. No answer is a 500 and the revocation listener never has to reconnect."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import wait_until
from tests.support.oauth import authz, login, refresh

pytestmark = pytest.mark.redis
GRACE = 2.0


@pytest.fixture(scope="module")
def svc(tmp_path_factory, redis_cluster):
    sidecar = admin_sidecar(tmp_path_factory.mktemp("cluster-svc"),
                            {"AUTH_SIDECAR_REFRESH__REUSE_GRACE_SECONDS": str(GRACE)},
                            store_url=redis_cluster.url, args=["--workers", "2"])
    yield sidecar
    sidecar.stop()
    logs = sidecar.logs()
    assert "reconnecting" not in logs and "Traceback" not in logs, logs[-3000:]


def post(svc, path, app, **data) -> httpx.Response:
    r = httpx.post(svc.http + path, auth=(app.client_id, app.client_secret), data=data)
    assert r.status_code < 500, r.text
    return r


def test_every_grant_and_a_chain_of_rotations(svc):
    app = svc.admin.app(grant_types=("password", "refresh_token", "client_credentials"))
    tokens = login(svc.http, app).json()
    for _ in range(5):
        r = refresh(svc.http, app, tokens["refresh_token"])
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert authz(svc.http, tokens["access_token"]).status_code == 200
    cc = post(svc, "/oauth/token", app, grant_type="client_credentials")
    assert cc.status_code == 200 and authz(svc.http, cc.json()["access_token"]).status_code == 200

    su = svc.admin.post(f"/admin/tenants/{app.tenant}/service-users", {"name": "etl", "org_id": "org-7"})
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "k"})
    now = int(time.time())
    assertion = jwt.encode({"iss": key["principal_id"], "sub": key["principal_id"],
                            "aud": "http://127.0.0.1:8080/oauth/token", "iat": now, "exp": now + 120,
                            "jti": f"a-{time.monotonic_ns()}"}, key["private_key"], algorithm="ES256",
                           headers={"kid": key["kid"]})
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    r = httpx.post(svc.http + "/oauth/token", data=grant)
    assert r.status_code == 200, r.text
    assert authz(svc.http, r.json()["access_token"]).status_code == 200
    replay = httpx.post(svc.http + "/oauth/token", data=grant)  # one-time use across slots and workers
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_grace_period_then_reuse_revokes_the_family(svc):
    app = svc.admin.app()
    first = login(svc.http, app).json()
    rotated = refresh(svc.http, app, first["refresh_token"]).json()
    again = refresh(svc.http, app, first["refresh_token"])  # a retry within the grace period
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == rotated["refresh_token"]
    assert authz(svc.http, again.json()["access_token"]).status_code == 200

    time.sleep(GRACE + 0.2)  # the grace period is over: the same token now is reuse
    reused = refresh(svc.http, app, first["refresh_token"])
    assert reused.status_code == 400 and "already used" in reused.json()["error_description"]
    assert refresh(svc.http, app, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    for access in (first["access_token"], rotated["access_token"], again.json()["access_token"]):
        wait_until(lambda access=access: authz(svc.http, access).status_code == 401, 5, "family's tokens revoked")


def test_revocation_reaches_the_cache_of_both_workers(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    # thirty fresh connections: SO_REUSEPORT spreads them over both workers, each caches the token
    assert {authz(svc.http, tokens["access_token"]).status_code for _ in range(30)} == {200}
    assert post(svc, "/oauth/revoke", app, token=tokens["access_token"]).status_code == 200
    wait_until(lambda: {authz(svc.http, tokens["access_token"]).status_code for _ in range(30)} == {401}, 5,
               "every worker denies the revoked token")


def test_introspection_and_revocation_of_refresh_tokens(svc):
    app = svc.admin.app()
    tokens = login(svc.http, app).json()
    assert post(svc, "/oauth/introspect", app, token=tokens["access_token"]).json()["active"] is True
    assert post(svc, "/oauth/introspect", app, token=tokens["refresh_token"]).json()["active"] is True
    assert post(svc, "/oauth/revoke", app, token=tokens["refresh_token"]).status_code == 200
    assert post(svc, "/oauth/introspect", app, token=tokens["refresh_token"]).json() == {"active": False}
    assert refresh(svc.http, app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_admin_crud(svc):
    admin = svc.admin.http
    app = svc.admin.app()
    assert admin.post("/admin/tenants", json={"id": app.tenant, "name": "x"}).status_code == 409
    dup = admin.post(f"/admin/tenants/{app.tenant}/users", json={"username": "alice", "password": "pw long enough"})
    assert dup.status_code == 409
    tokens = login(svc.http, app).json()
    assert admin.delete(f"/admin/tenants/{app.tenant}/users/{app.user_id}").status_code == 204
    assert admin.delete(f"/admin/tenants/{app.tenant}/users/{app.user_id}").status_code == 404
    wait_until(lambda: authz(svc.http, tokens["access_token"]).status_code == 401, 5, "user's tokens revoked")
    assert admin.delete(f"/admin/tenants/{app.tenant}/clients/{app.client_id}").status_code == 204
    assert login(svc.http, app).status_code == 401
    su = svc.admin.post(f"/admin/tenants/{app.tenant}/service-users", {"name": "etl", "org_id": "o"})
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "k"})
    assert admin.get(f"/admin/service-users/{su['id']}/keys/{key['kid']}").status_code == 200
    assert admin.delete(f"/admin/service-users/{su['id']}/keys/{key['kid']}").status_code == 204
    assert admin.delete(f"/admin/service-users/{su['id']}").status_code == 204
    assert httpx.get(svc.http + "/readyz").status_code == 200
