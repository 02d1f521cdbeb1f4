"""Redis: state survives a sidecar restart and a Redis restart (AOF); a Redis outage is 503."""

from __future__ import annotations

import httpx
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import authz, login, refresh
from tests.support.redis_server import RedisServer


@pytest.fixture
def stack(tmp_path, redis_server_path):
    redis = RedisServer(tmp_path / "redis", redis_server_path).start()
    sidecar = admin_sidecar(tmp_path, store_url=redis.url)
    yield redis, sidecar
    sidecar.stop()
    redis.stop()


def test_sidecar_restart_keeps_users_clients_and_refresh_tokens(stack, tmp_path):
    redis, sidecar = stack
    app = sidecar.admin.app()
    tokens = login(sidecar.http, app).json()
    assert sidecar.stop() == 0
    again = admin_sidecar(tmp_path, store_url=redis.url, keys=tmp_path / "keys")
    try:
        assert login(again.http, app).status_code == 200
        assert refresh(again.http, app, tokens["refresh_token"]).status_code == 200
    finally:
        again.stop()


def test_redis_restart_with_aof_keeps_state(stack):
    redis, sidecar = stack
    app = sidecar.admin.app()
    tokens = login(sidecar.http, app).json()
    redis.restart()
    assert login(sidecar.http, app).status_code == 200
    rotated = refresh(sidecar.http, app, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert authz(sidecar.http, rotated.json()["access_token"]).status_code == 200


def test_redis_down_is_503_and_consumes_nothing(stack):
    redis, sidecar = stack
    app = sidecar.admin.app()
    tokens = login(sidecar.http, app).json()
    redis.stop()
    r = refresh(sidecar.http, app, tokens["refresh_token"])
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    assert login(sidecar.http, app).status_code == 503
    assert httpx.get(sidecar.http + "/readyz").status_code == 503
    redis.start()
    # the refresh token was not consumed while Redis was away
    assert refresh(sidecar.http, app, tokens["refresh_token"]).status_code == 200
