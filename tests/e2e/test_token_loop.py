"""The whole loop through Envoy: admin sets up a tenant, the app logs in, the upstream sees
the identity, revocation makes the very next request 401. On Redis, with two workers."""

from __future__ import annotations

import httpx
import pytest

from authz.keys import write_new_key
from tests.e2e.conftest import start_stack, stop_stack
from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN, Admin, login


@pytest.fixture(scope="module")
def loop_stack(tmp_path_factory, envoy_path, redis_server):
    tmp = tmp_path_factory.mktemp("loop")
    write_new_key(tmp / "keys")
    s = start_stack(tmp, {"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys"), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN_TOKEN,
                          "AUTH_SIDECAR_STORE_URL": redis_server.url.replace("/0", "/3")})
    yield s
    stop_stack(s)


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_login_request_through_envoy_then_revoke(loop_stack, listener):
    s = loop_stack
    url = s.grpc_url if listener == "grpc" else s.http_url
    app = Admin(s.sidecar.http).app(org="org-5", projects=("proj-1",))
    tokens = login(s.sidecar.http, app).json()
    auth = {"authorization": f"Bearer {tokens['access_token']}"}
    r = httpx.get(url + "/orders", headers={**auth, "x-tenant-id": "evil"})
    assert r.status_code == 200
    got = r.json()["headers"]
    assert got["x-tenant-id"] == [app.tenant] and got["x-org-id"] == ["org-5"]
    assert got["x-project-id"] == ["proj-1"] and got["x-user-id"] == [app.user_id]
    revoke = httpx.post(s.sidecar.http + "/oauth/revoke", auth=(app.client_id, app.client_secret),
                        data={"token": tokens["access_token"]})
    assert revoke.status_code == 200
    assert httpx.get(url + "/orders", headers=auth).status_code == 401


def test_revocation_reaches_every_worker(tmp_path, envoy_path, redis_server):
    write_new_key(tmp_path / "keys")
    s = start_stack(tmp_path, {"AUTH_SIDECAR_KEYS_DIR": str(tmp_path / "keys"),
                               "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN_TOKEN,
                               "AUTH_SIDECAR_STORE_URL": redis_server.url.replace("/0", "/4")},
                    args=["--workers", "2"])
    try:
        wait_until(lambda: s.sidecar.logs().count('"msg": "serving"') == 2, what="both workers")
        app = Admin(s.sidecar.http).app()
        token = login(s.sidecar.http, app).json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}
        # fresh connections spread over both workers, so both cache the token
        for _ in range(10):
            assert httpx.get(s.sidecar.http + "/ext_authz/x", headers=auth).status_code == 200
        httpx.post(s.sidecar.http + "/oauth/revoke", auth=(app.client_id, app.client_secret), data={"token": token})

        def all_denied() -> bool:
            return all(httpx.get(s.sidecar.http + "/ext_authz/x", headers=auth).status_code == 401
                       for _ in range(10))
        wait_until(all_denied, 5, "revocation on every worker (Redis pub/sub)")
    finally:
        stop_stack(s)
