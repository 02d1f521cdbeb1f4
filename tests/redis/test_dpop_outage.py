"""DPoP's replay store is Redis (`dpop.replay: auto` on a Redis store): with Redis down, a
cached DPoP-bound token with a valid fresh proof is denied 503 (the jti cannot be recorded:
never an allow that a replay could repeat), and comes back when Redis does. A stalled Redis
(SIGSTOP) is answered 503 within `dpop.replay_timeout_seconds`, not after the Redis client's
timeouts and retries; so is a DPoP token request, whose proof's jti the token endpoint records
in Redis too (and no token is issued on a proof it could not record)."""

from __future__ import annotations

import os
import signal
import time

import uuid

import grpc
import httpx
import jwt
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from requests_oauth2client import DPoPKey, OAuth2Client

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


def test_a_stalled_redis_answers_dpop_token_requests_503_within_the_replay_timeout(outage):
    redis, sidecar = outage
    admin = sidecar.admin
    su = admin.post(f"/admin/tenants/{admin.app().tenant}/service-users", {"name": "etl", "org_id": "org-7"})
    signing = admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "etl-key"})
    endpoint, dpop = sidecar.http + "/oauth/token", DPoPKey.generate()

    def ask() -> httpx.Response:
        """A jwt-bearer grant (no client authentication) with a fresh assertion and proof: the
        proof's jti is the request's first store call."""
        now = int(time.time())
        assertion = jwt.encode({"iss": signing["principal_id"], "sub": signing["principal_id"],
                                "aud": "http://127.0.0.1:8080/oauth/token", "iat": now, "exp": now + 120,
                                "jti": uuid.uuid4().hex}, signing["private_key"], algorithm="ES256",
                               headers={"kid": signing["kid"]})
        return httpx.post(endpoint, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                          "assertion": assertion},
                          headers={"dpop": str(dpop.proof(htm="POST", htu=endpoint))}, timeout=30)

    assert ask().status_code == 200
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            started = time.monotonic()
            r = ask()
            took = time.monotonic() - started
            assert r.status_code == 503, r.text  # never a token on a proof whose jti was not recorded
            assert r.json() == {"error": "temporarily_unavailable",
                                "error_description": "the token store is unavailable; retry later"}
            assert r.headers["retry-after"] == "1"
            assert took < 1.0, took  # dpop.replay_timeout_seconds: 0.5 s; the Redis client alone: ~9 s
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    wait_until(lambda: ask().status_code == 200, 10, "Redis back")
    token = ask().json()  # the same service user and key get bound tokens again
    assert token["token_type"] == "DPoP"
    assert jwt.decode(token["access_token"], options={"verify_signature": False})["cnf"] == {"jkt": dpop.dpop_jkt}
    assert "DPoP replay check: no answer within 0.5 s" in sidecar.logs() and "Traceback" not in sidecar.logs()
