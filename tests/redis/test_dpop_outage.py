"""DPoP's replay store is Redis (`dpop.replay: auto` on a Redis store): with Redis down, a
cached DPoP-bound token with a valid fresh proof is denied 503 (the jti cannot be recorded:
never an allow that a replay could repeat), and comes back when Redis does. A stalled Redis
(SIGSTOP) is answered 503 within `dpop.replay_timeout_seconds`, not after the Redis client's
timeouts and retries."""

from __future__ import annotations

import os
import signal
import time

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from requests_oauth2client import OAuth2Client

from authz.dpop import b64url_sha256
from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import wait_until
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def outage(tmp_path_factory, redis_server_path):
    """One Redis and a sidecar on it for both tests: each ends with Redis answering again."""
    tmp = tmp_path_factory.mktemp("dpop-outage")
    redis = RedisServer(tmp / "redis", redis_server_path).start()
    sidecar = admin_sidecar(tmp, store_url=redis.url)
    yield redis, sidecar
    sidecar.stop()
    redis.stop()


def test_redis_down_denies_dpop_checks_with_503(outage):
    redis, sidecar = outage
    try:
        app = sidecar.admin.app()
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
        if redis.proc.poll() is not None:
            redis.start()


def test_a_stalled_redis_denies_dpop_checks_within_the_replay_timeout(outage):
    redis, sidecar = outage
    channel = grpc.insecure_channel(sidecar.grpc)
    try:
        app = sidecar.admin.app()
        token = OAuth2Client(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret),
                             testing=True).resource_owner_password(app.username, app.password, dpop=True)
        ath = b64url_sha256(token.access_token)

        def http_check() -> int:
            proof = token.dpop_key.proof(htm="GET", htu=sidecar.http + "/x", ath=ath)
            return httpx.get(sidecar.http + "/ext_authz/x", timeout=30,
                             headers={"authorization": f"DPoP {token.access_token}", "dpop": str(proof)}).status_code

        def grpc_check() -> int:
            req = pb.CheckRequest()
            http = req.attributes.request.http
            http.path, http.method, http.scheme, http.host = "/x", "GET", "https", "api.example.com"
            http.headers["authorization"] = f"DPoP {token.access_token}"
            http.headers["dpop"] = str(token.dpop_key.proof(htm="GET", htu="https://api.example.com/x", ath=ath))
            return pb_grpc.AuthorizationStub(channel).Check(req, timeout=30).denied_response.status.code or 200

        assert http_check() == 200 and grpc_check() == 200
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            for check in (http_check, grpc_check, http_check):
                started = time.monotonic()
                assert check() == 503
                assert time.monotonic() - started < 1.5  # 0.5 s by default; the Redis client alone: ~9 s
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        wait_until(lambda: http_check() == 200, 10, "Redis back")
        assert grpc_check() == 200
    finally:
        channel.close()
