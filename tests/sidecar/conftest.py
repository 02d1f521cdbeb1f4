from __future__ import annotations

import pytest

from tests.support.admin_sidecar import admin_sidecar


@pytest.fixture(scope="module", params=["memory", "redis"])
def svc(request, tmp_path_factory):
    """A running sidecar with the admin API on, over each store."""
    tmp = tmp_path_factory.mktemp(f"svc-{request.param}")
    env = {"AUTH_SIDECAR_LOGIN_MAX_FAILURES": "5", "AUTH_SIDECAR_LOGIN_LOCKOUT_SECONDS": "60",
           # every test client is 127.0.0.1 and Redis outlives the module: the per-address limit
           # has its own tests (test_throttle_by_source.py)
           "AUTH_SIDECAR_LOGIN_SOURCE_MAX_FAILURES": "100000", "AUTH_SIDECAR_LOGIN_DELAY_SECONDS": "30"}
    if request.param == "redis":
        env["AUTH_SIDECAR_STORE_URL"] = request.getfixturevalue("redis_server").url
    sidecar = admin_sidecar(tmp, env)
    sidecar.store_kind = request.param
    yield sidecar
    sidecar.stop()
