"""DPoP's replay store is Redis (`dpop.replay: auto` on a Redis store): with Redis down, a
cached DPoP-bound token with a valid fresh proof is denied 503 (the jti cannot be recorded:
never an allow that a replay could repeat), and comes back when Redis does."""

from __future__ import annotations

import httpx
import pytest
from requests_oauth2client import OAuth2Client

from authz.dpop import b64url_sha256
from authz.keys import write_new_key
from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN, Admin
from tests.support.processes import Sidecar
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


def test_redis_down_denies_dpop_checks_with_503(tmp_path, redis_server_path):
    redis = RedisServer(tmp_path / "redis", redis_server_path).start()
    write_new_key(tmp_path / "keys")
    sidecar = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(tmp_path / "keys"), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN_TOKEN,
                           "AUTH_SIDECAR_STORE_URL": redis.url}, tmp=tmp_path).start()
    try:
        app = Admin(sidecar.http).app()
        token = OAuth2Client(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                             testing=True).resource_owner_password(app.username, app.password, dpop=True)

        def check() -> httpx.Response:  # HTTP mode straight to the sidecar: htu is its Host and the path
            proof = token.dpop_key.proof(htm="GET", htu=sidecar.http + "/x", ath=b64url_sha256(token.access_token))
            return httpx.get(sidecar.http + "/ext_authz/x",
                             headers={"authorization": f"DPoP {token.access_token}", "dpop": str(proof)})

        assert check().status_code == 200  # the token is cached from here on
        redis.stop()
        denied = check()
        assert denied.status_code == 503 and denied.json()["error"] == "temporarily_unavailable", denied.text
        redis.start()
        wait_until(lambda: check().status_code == 200, 10, "Redis back")
        assert "Traceback" not in sidecar.logs()
    finally:
        sidecar.stop()
        redis.stop()
