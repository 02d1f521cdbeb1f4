"""SIGTERM drains: every in-flight Check completes, the process exits 0."""

from __future__ import annotations

import json
import threading
import time

import grpc
import jwt
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc

from tests.support.jwks_server import IssuerKey, JwksServer
from tests.support.processes import Sidecar

ISSUER = "https://idp.example"


def check_request(token: str) -> pb.CheckRequest:
    req = pb.CheckRequest()
    req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    req.attributes.request.http.path = "/"
    return req


def test_sigterm_during_load_fails_no_in_flight_check(tmp_path):
    jwks = JwksServer()
    jwks.keys.append(IssuerKey())
    trusted = json.dumps([{"issuer": ISSUER, "jwks_uri": jwks.uri, "audiences": ["api"]}])
    sidecar = Sidecar(env={"AUTH_SIDECAR_TRUSTED_ISSUERS": trusted,
                           "AUTH_SIDECAR_JWKS__UNKNOWN_KID_COOLDOWN_SECONDS": "0"}, tmp=tmp_path).start()
    try:
        # The issuer rotates to a key the sidecar has not seen; its JWKS answer is held back,
        # so every Check below is in flight (waiting on the refetch) when SIGTERM arrives.
        new = IssuerKey()
        jwks.keys.append(new)
        jwks.gate = threading.Event()
        jwks.fetch_started.clear()
        now = int(time.time())
        tokens = [jwt.encode({"iss": ISSUER, "sub": f"u{i}", "aud": "api", "exp": now + 600}, new.private,
                             algorithm="ES256", headers={"kid": new.kid}) for i in range(40)]
        channel = grpc.insecure_channel(sidecar.grpc)
        stub = pb_grpc.AuthorizationStub(channel)
        assert stub.Check(pb.CheckRequest(), timeout=10).status.code == 16  # connection up (no token: deny)
        futures = [stub.Check.future(check_request(t), timeout=30) for t in tokens]
        assert jwks.fetch_started.wait(10), "no Check reached the sidecar"
        # A later call on the same HTTP/2 connection is answered only after the server took
        # in the streams opened before it: once it returns, all 40 Checks are in flight.
        assert stub.Check(pb.CheckRequest(), timeout=10).status.code == 16
        sidecar.proc.send_signal(15)
        time.sleep(0.2)  # let the signal land while the Checks wait; the outcome must not depend on it
        jwks.gate.set()
        responses = [f.result() for f in futures]
        assert all(r.status.code == 0 for r in responses), [r.status.code for r in responses]
        assert sidecar.proc.wait(20) == 0
        channel.close()
    finally:
        jwks.gate.set() if jwks.gate else None
        sidecar.stop()
        jwks.stop()
