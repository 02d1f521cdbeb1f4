"""The whole loop through Envoy: admin sets up a tenant, the app logs in, the upstream sees
the identity, revocation makes the very next request 401. On Redis, with two workers."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import stack_around, stop_stack
from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import wait_until
from tests.support.oauth import login


@pytest.fixture(scope="module")
def loop_stack(tmp_path_factory, envoy_path, redis_server):
    tmp = tmp_path_factory.mktemp("loop")
    s = stack_around(admin_sidecar(tmp, store_url=redis_server.url.replace("/0", "/3")), tmp)
    yield s
    stop_stack(s)


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_login_request_through_envoy_then_revoke(loop_stack, listener):
    s = loop_stack
    url = s.grpc_url if listener == "grpc" else s.http_url
    app = s.sidecar.admin.app(org="org-5", projects=("proj-1",))
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


def test_revocation_reaches_every_worker(tmp_path, redis_server):
    # the sidecar's own ext_authz endpoint, no Envoy: each fresh connection may land on either worker
    sidecar = admin_sidecar(tmp_path, store_url=redis_server.url.replace("/0", "/4"), args=["--workers", "2"])
    try:
        wait_until(lambda: sidecar.logs().count('"msg": "serving"') == 2, what="both workers")
        app = sidecar.admin.app()
        token = login(sidecar.http, app).json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}
        # fresh connections spread over both workers, so both cache the token
        for _ in range(10):
            assert httpx.get(sidecar.http + "/ext_authz/x", headers=auth).status_code == 200
        httpx.post(sidecar.http + "/oauth/revoke", auth=(app.client_id, app.client_secret), data={"token": token})

        def all_denied() -> bool:
            return all(httpx.get(sidecar.http + "/ext_authz/x", headers=auth).status_code == 401
                       for _ in range(10))
        wait_until(all_denied, 5, "revocation on every worker (Redis pub/sub)")
    finally:
        sidecar.stop()
