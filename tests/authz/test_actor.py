"""A delegated token (RFC 8693 `act`): the immediate actor reaches the upstream as `x-actor-id`
and the whole `act` as dynamic metadata; a client-sent `x-actor-id` never does; the actor is
part of the shared profile (tokens of one user and actor cost no more memory than others)."""

from __future__ import annotations

import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from google.protobuf.json_format import MessageToDict

from authz.errors import TokenError
from authz.identity import Identity
from authz.keys import KeyRing
from config import load_settings
from sidecar.container import build
from tests.support.tokens import claims, sign

CHAIN = {"sub": "svc-b", "act": {"sub": "svc-a"}}


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.ephemeral_key("ES256")


async def grpc_ok(container, token: str, **headers: str) -> pb.OkHttpResponse:
    req = pb.CheckRequest()
    req.attributes.request.http.headers.update({"authorization": f"Bearer {token}", **headers})
    req.attributes.request.http.path = "/x"
    response = pb.CheckResponse.FromString(await container.authz_service.check(req, None))
    assert response.status.code == 0
    return response


async def test_actor_header_and_act_metadata(ring):
    container = build(load_settings(environ={"AUTH_SIDECAR_DYNAMIC_METADATA": "sub,jti,iss,tenant,org_id,project_id,client_id,scope,act,anonymous"}), ring)
    delegated = sign(ring, claims(sub="alice", jti="j-1", act=CHAIN))
    plain = sign(ring, claims(sub="bob", jti="j-2"))
    for _ in range(2):  # encoded once per shape, then from the cache
        response = await grpc_ok(container, delegated, **{"x-actor-id": "root"})
        headers = {h.header.key: h.header.value for h in response.ok_response.headers}
        assert headers["x-actor-id"] == "svc-b" and headers["x-user-id"] == "alice"
        assert "x-actor-id" not in response.ok_response.headers_to_remove
        assert MessageToDict(response.dynamic_metadata)["act"] == CHAIN
        response = await grpc_ok(container, plain, **{"x-actor-id": "root"})
        assert "x-actor-id" not in {h.header.key for h in response.ok_response.headers}
        assert "x-actor-id" in response.ok_response.headers_to_remove  # the client's is stripped
        assert "act" not in MessageToDict(response.dynamic_metadata)


async def test_actor_header_name_is_configurable(ring):
    container = build(load_settings(environ={"AUTH_SIDECAR_HEADERS__ACTOR": "X-Acting-For", "AUTH_SIDECAR_DYNAMIC_METADATA": "sub,jti,iss,tenant,org_id,project_id,client_id,scope,act,anonymous"}), ring)
    response = await grpc_ok(container, sign(ring, claims(act={"sub": "svc-a"})))
    assert {h.header.key: h.header.value for h in response.ok_response.headers}["x-acting-for"] == "svc-a"


def test_tokens_of_one_actor_share_the_profile():
    a = Identity.from_claims(claims(sub="u1", jti="1", act=CHAIN), 0)
    b = Identity.from_claims(claims(sub="u2", jti="2", act=dict(reversed(list(CHAIN.items())))), 0)
    assert a.profile is b.profile and a.actor == "svc-b"
    assert Identity.from_claims(claims(sub="u3", jti="3", act={"sub": "svc-c"}), 0).profile is not a.profile
    assert Identity.from_claims(claims(sub="u4", jti="4"), 0).actor is None


@pytest.mark.parametrize("act", ["svc-a", ["svc-a"], {"sub": "svc\r\na"}, {"sub": "x", "pad": "y" * 3000}])
def test_unusable_act_refuses_the_token(act):
    with pytest.raises(TokenError) as caught:
        Identity.from_claims(claims(act=act), 0)
    assert caught.value.reason == "bad_claim"
