"""A DPoP refusal as each ext_authz mode encodes it: the DPoP challenge (RFC 9449 §7.1) and,
with a nonce, the DPoP-Nonce header (§9) for Envoy to pass to the client."""

from __future__ import annotations

from envoy.service.auth.v3 import external_auth_pb2 as pb

from authz.decision import Decision
from transport.grpc.authorization import encode as encode_grpc
from transport.http.check import encode as encode_http


def refusal(nonce: str = "") -> Decision:
    return Decision(False, 401, "dpop_nonce" if nonce else "dpop_invalid_proof",
                    error="use_dpop_nonce" if nonce else "invalid_dpop_proof",
                    description="a fresh DPoP nonce is required",
                    dpop_algs="ES256 EdDSA", nonce=nonce)


def grpc_headers(decision: Decision) -> dict[str, str]:
    response = pb.CheckResponse.FromString(encode_grpc(decision, None))
    assert response.denied_response.status.code == 401
    return {h.header.key: h.header.value for h in response.denied_response.headers}


def http_headers(decision: Decision) -> dict[str, str]:
    start, _ = encode_http(decision, None)  # type: ignore[arg-type]
    assert start["status"] == 401
    return {k.decode(): v.decode() for k, v in start["headers"]}


def test_both_modes_send_the_challenge_and_the_nonce():
    for headers in (grpc_headers(refusal("6a.abc")), http_headers(refusal("6a.abc"))):
        assert headers["dpop-nonce"] == "6a.abc"
        assert headers["www-authenticate"] == ('DPoP realm="auth-sidecar", error="use_dpop_nonce", '
                                               'error_description="a fresh DPoP nonce is required", algs="ES256 EdDSA"')
    for headers in (grpc_headers(refusal()), http_headers(refusal())):
        assert "dpop-nonce" not in headers and 'error="invalid_dpop_proof"' in headers["www-authenticate"]
