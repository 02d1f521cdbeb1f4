"""A claim that would become a header value must be one (RFC 9110 §5.5: visible ASCII, SP,
HTAB, no whitespace at the ends; obs-text refused). Such a token is 401 invalid_token in both
modes, straight and through the real Envoy (which answered 503 `invalid header value` in gRPC
mode when it was handed one), and a good token keeps passing."""

from __future__ import annotations

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc

from authz.keys import KeyRing, write_new_key
from tests.e2e.conftest import start_stack, stop_stack
from tests.support.tokens import claims, sign

BAD = [
    ("tenant", "acme\x01"), ("tenant", "\x1b[31macme"), ("org_id", "org\x7f"), ("sub", "user\x00x"),
    ("client_id", "app\r\nx-injected: 1"), ("tenant", " acme"), ("tenant", "acme\t"), ("sub", "zürich"),
    ("project_ids", ["p1", "p\x02"]), ("scope", "read \x05write"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("claims")
    write_new_key(tmp / "keys")
    s = start_stack(tmp, {"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys")})
    s.ring = KeyRing.from_dir(str(tmp / "keys"))
    yield s
    stop_stack(s)


def grpc_check(target: str, token: str) -> pb.CheckResponse:
    req = pb.CheckRequest()
    req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    req.attributes.request.http.path = "/x"
    with grpc.insecure_channel(target) as ch:
        return pb_grpc.AuthorizationStub(ch).Check(req, timeout=10)


def is_invalid_token(www_authenticate: str) -> bool:
    return www_authenticate.startswith("Bearer") and 'error="invalid_token"' in www_authenticate


@pytest.mark.parametrize("claim,value", BAD, ids=[f"{c}={v!r}" for c, v in BAD])
def test_a_claim_that_is_no_header_value_is_invalid_token(stack, claim, value):
    token = sign(stack.ring, claims(**{claim: value}))
    answer = grpc_check(stack.sidecar.grpc, token)
    assert answer.status.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert answer.denied_response.status.code == 401
    headers = {h.header.key: h.header.value for h in answer.denied_response.headers}
    assert is_invalid_token(headers["www-authenticate"]) and "header value" in headers["www-authenticate"]

    r = httpx.get(stack.sidecar.http + "/ext_authz/x", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401 and is_invalid_token(r.headers["www-authenticate"])

    for front in (stack.grpc_url, stack.http_url):  # Envoy in gRPC mode, then in HTTP mode
        r = httpx.get(front + "/x", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401, (front, r.status_code, r.text)
        assert is_invalid_token(r.headers["www-authenticate"])


def test_good_values_still_pass_with_their_headers(stack):
    token = sign(stack.ring, claims(tenant="acme corp", scope="  read   write ", org_id="org-1~!"))
    for front in (stack.grpc_url, stack.http_url):
        r = httpx.get(front + "/x", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200, (front, r.text)
        seen = r.json()["headers"]
        assert seen["x-tenant-id"] == ["acme corp"] and seen["x-scopes"] == ["read write"]
        assert seen["x-org-id"] == ["org-1~!"]
