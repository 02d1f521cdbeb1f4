"""Redis going away under a refresh load, then coming back: a stalled Redis (SIGSTOP for longer
than the client's socket timeout) and a Sentinel failover (the master killed). During the
outage answers are 503 with Retry-After and /readyz is 503; afterwards every chain continues
with its token: none broken, no family revoked."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import wait_until
from tests.support.oauth import authz
from tests.support.processes import Sidecar
from tests.support.redis_load import RefreshChains
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis
CHAINS = 4


def readyz(sidecar: Sidecar) -> int:
    try:
        return httpx.get(sidecar.http + "/readyz", timeout=2).status_code
    except httpx.TransportError:
        return 0


def continue_after(load: RefreshChains, sidecar: Sidecar, more: int = 3) -> None:
    """Every chain rotates `more` times again, then is stopped; none broke, every family lives."""
    floor = load.rotations()
    wait_until(lambda: load.broken() or all(n >= f + more for n, f in zip(load.rotations(), floor)), 30,
               "every chain rotating again")
    load.stop()
    assert load.broken() == []
    assert 500 not in load.statuses()
    for chain in load.chains:  # the family was not revoked: its latest access token passes
        assert authz(sidecar.http, chain.access).status_code == 200


def test_a_stalled_redis_breaks_no_chain(tmp_path, redis_server_path):
    redis = RedisServer(tmp_path / "redis", redis_server_path).start()
    sidecar = admin_sidecar(tmp_path, store_url=redis.url)
    try:
        load = RefreshChains(sidecar.http, [sidecar.admin.app() for _ in range(CHAINS)]).start()
        wait_until(lambda: min(load.rotations()) >= 3, 15, "chains rotating")
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: readyz(sidecar) == 503, 5, "/readyz 503 while Redis is stopped")
            time.sleep(2.5)  # the stall outlasts the client's 2 s socket timeout
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        continue_after(load, sidecar)
        assert readyz(sidecar) == 200
    finally:
        sidecar.stop()
        redis.stop()


def test_sentinel_failover_under_a_refresh_load(tmp_path, redis_sentinel):
    sidecar = admin_sidecar(tmp_path, store_url=redis_sentinel.url)
    try:
        load = RefreshChains(sidecar.http, [sidecar.admin.app() for _ in range(CHAINS)]).start()
        wait_until(lambda: min(load.rotations()) >= 3, 15, "chains rotating")
        old_master = redis_sentinel.master_port()
        redis_sentinel.kill(old_master)
        wait_until(lambda: readyz(sidecar) == 503, 5, "/readyz 503 while there is no master")
        wait_until(lambda: redis_sentinel.master_port() != old_master, 30, "a replica promoted")
        wait_until(lambda: readyz(sidecar) == 200, 15, "/readyz 200 on the new master")
        continue_after(load, sidecar)
        unavailable = load.unavailable()
        assert unavailable, "the failover was not felt: no 503 at all"
        assert all(retry for _, retry in unavailable), "a 503 without Retry-After"
    finally:
        sidecar.stop()


def test_redis_down_is_503_with_retry_after_everywhere(tmp_path, redis_server_path):
    redis = RedisServer(tmp_path / "redis", redis_server_path).start()
    sidecar = admin_sidecar(tmp_path, store_url=redis.url)
    try:
        app = sidecar.admin.app()
        tokens = httpx.post(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                            data={"grant_type": "password", "username": app.username,
                                  "password": app.password}).json()
        redis.stop()
        auth = (app.client_id, app.client_secret)
        answers = [httpx.post(sidecar.http + "/oauth/token", auth=auth,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}),
                   httpx.post(sidecar.http + "/oauth/introspect", auth=auth, data={"token": tokens["access_token"]}),
                   httpx.post(sidecar.http + "/oauth/revoke", auth=auth, data={"token": tokens["access_token"]}),
                   sidecar.admin.http.post("/admin/tenants", json={"id": "t-down", "name": "x"})]
        for r in answers:
            assert (r.status_code, r.json()["error"]) == (503, "temporarily_unavailable"), (r.request.url, r.text)
            assert r.headers["retry-after"] == "1"
        # ext_authz, on a cache miss, cannot read revocations: a deny that says why, not a 403 or 500
        denied = authz(sidecar.http, tokens["access_token"])
        assert denied.status_code == 503 and denied.json()["error"] == "temporarily_unavailable"
        assert readyz(sidecar) == 503
        redis.start()
        wait_until(lambda: authz(sidecar.http, tokens["access_token"]).status_code == 200, 10, "Redis back")
        assert readyz(sidecar) == 200
        assert "Traceback" not in sidecar.logs()
    finally:
        sidecar.stop()
        redis.stop()
