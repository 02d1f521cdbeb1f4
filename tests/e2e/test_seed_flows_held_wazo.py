"""Seeds 003 (backend-held refresh) and 004 (Wazo tokens) through the real Envoy, in both
ext_authz modes: the tokens these flows hand out are the same access tokens everywhere."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import stack_around, stop_stack
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import login

API = "/api/auth/0.1"
HELD = "urn:auth-sidecar:grant-type:held-refresh"


@pytest.fixture(scope="module")
def seeds_stack(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("seeds-held-wazo")
    s = stack_around(admin_sidecar(tmp, {"AUTH_SIDECAR_WAZO_API__ENABLED": "true"}), tmp)
    yield s
    stop_stack(s)


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_wazo_tokens_through_envoy(seeds_stack, listener):
    s = seeds_stack
    url = s.grpc_url if listener == "grpc" else s.http_url
    client_id = f"example-{uuid.uuid4().hex[:8]}"
    app = s.sidecar.admin.app(refresh_policy="offline", client_id=client_id)
    created = httpx.post(s.sidecar.http + API + "/token", auth=(app.username, app.password),
                         json={"client_id": client_id, "access_type": "offline"})
    assert created.status_code == 200, created.text
    rt = created.json()["data"]["refresh_token"]
    assert httpx.get(url + "/orders", headers={"x-auth-token": rt}).status_code == 401
    fresh = httpx.post(s.sidecar.http + API + "/token",
                       json={"expiration": 3600, "client_id": client_id, "refresh_token": rt})
    assert fresh.status_code == 200, fresh.text
    r = httpx.get(url + "/orders", headers={"x-auth-token": fresh.json()["data"]["token"]})
    assert r.status_code == 200
    assert r.json()["headers"]["x-user-id"] == [app.user_id]


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_held_refresh_through_envoy(seeds_stack, listener):
    s = seeds_stack
    url = s.grpc_url if listener == "grpc" else s.http_url
    app = s.sidecar.admin.app(grant_types=("password", HELD), refresh_policy="held")
    first = login(s.sidecar.http, app).json()["access_token"]
    traded = httpx.post(s.sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                        data={"grant_type": HELD, "access_token": first})
    assert traded.status_code == 200 and "refresh_token" not in traded.json()
    auth = {"authorization": f"Bearer {traded.json()['access_token']}"}
    assert httpx.get(url + "/orders", headers=auth).status_code == 200
    assert httpx.get(url + "/orders", headers={"authorization": f"Bearer {first}"}).status_code == 401
