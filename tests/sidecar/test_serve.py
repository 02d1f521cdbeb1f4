"""The process: probes, metrics, gRPC health, workers, embedded defaults."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import slow_worker
from tests.support.net import wait_until
from tests.support.processes import Sidecar

ROOT = Path(__file__).resolve().parents[2]


def check(target: str, token: str | None) -> pb.CheckResponse:
    req = pb.CheckRequest()
    if token:
        req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    with grpc.insecure_channel(target) as ch:
        return pb_grpc.AuthorizationStub(ch).Check(req, timeout=10)


def test_embedded_defaults_probes_and_metrics(tmp_path):
    s = Sidecar(tmp=tmp_path).start()
    try:
        assert httpx.get(s.http + "/healthz").json() == {"status": "ok"}
        assert httpx.get(s.http + "/readyz").status_code == 200
        jwks = httpx.get(s.http + "/.well-known/jwks.json").json()
        assert jwks["keys"][0]["alg"] == "ES256"
        with grpc.insecure_channel(s.grpc) as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        assert check(s.grpc, None).status.code == 16
        metrics = httpx.get(s.http + "/metrics").text
        assert 'auth_sidecar_authz_decisions_total{mode="grpc",reason="missing_token",result="deny"} 1.0' in metrics
        assert "auth_sidecar_authz_check_seconds_bucket" in metrics
        assert "ephemeral" in s.logs()
    finally:
        assert s.stop() == 0


def health(target: str, service: str) -> int:
    with grpc.insecure_channel(target) as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


@pytest.mark.parametrize("transport", ["h2", "grpcio"])
def test_grpc_transports_answer_checks_and_health(tmp_path, keys_dir, transport):
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(keys_dir), "AUTH_SIDECAR_GRPC_SERVER": transport},
                tmp=tmp_path).start()
    try:
        token = s.mint("--sub", "u1", "--tenant", "t")
        answer = check(s.grpc, token)
        assert answer.status.code == 0
        assert {h.header.key: h.header.value for h in answer.ok_response.headers}["x-user-id"] == "u1"
        assert check(s.grpc, "not-a-token").status.code == 16
        for service in ("", "envoy.service.auth.v3.Authorization"):
            assert health(s.grpc, service) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            health(s.grpc, "no.such.Service")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        assert s.stop() == 0


def test_health_watch_is_unimplemented_on_h2(tmp_path):
    s = Sidecar(tmp=tmp_path).start()
    try:
        with grpc.insecure_channel(s.grpc) as ch:
            stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
            with pytest.raises(grpc.RpcError) as err:
                next(stream)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        assert s.stop() == 0


def test_workers_share_ports_and_key(tmp_path, keys_dir, redis_server):
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(keys_dir), "AUTH_SIDECAR_STORE_URL": redis_server.url},
                args=["--workers", "2"], tmp=tmp_path).start()
    try:
        token = s.mint("--sub", "u1", "--tenant", "t")
        # new connections land on either worker: every one of them accepts the token
        for _ in range(8):
            assert check(s.grpc, token).status.code == 0
        for _ in range(8):
            with httpx.Client() as c:
                assert c.get(s.http + "/ext_authz/x", headers={"authorization": f"Bearer {token}"}).status_code == 200
        wait_until(lambda: s.logs().count('"msg": "serving"') == 2, what="both workers serving")
    finally:
        assert s.stop() == 0


def test_ephemeral_key_is_shared_by_workers(tmp_path, redis_server):
    s = Sidecar(env={"AUTH_SIDECAR_STORE_URL": redis_server.url}, args=["--workers", "2"], tmp=tmp_path).start()
    try:
        kids = {httpx.Client().get(s.http + "/.well-known/jwks.json").json()["keys"][0]["kid"] for _ in range(8)}
        assert len(kids) == 1
    finally:
        assert s.stop() == 0


def test_sigterm_while_workers_start_is_a_clean_stop():
    # both workers exist but have no handler yet: the forwarded SIGTERM ends them, as asked
    parent = subprocess.Popen([sys.executable, "-c", slow_worker.RUNNER], cwd=ROOT)
    try:
        wait_until(lambda: len(children(parent.pid)) == 2, what="two workers started")
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=20) == 0
    finally:
        parent.kill()


def children(pid: int) -> list[str]:
    """Worker processes of `pid` (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-f", "-P", str(pid), "spawn_main"], capture_output=True, text=True).stdout
    return out.split()
