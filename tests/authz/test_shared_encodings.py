"""Tokens of one shape share one decision and its encoding; each response still carries the
requesting token's own `sub` header and `sub`/`jti` metadata, never another token's."""

from __future__ import annotations

import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from google.protobuf.json_format import MessageToDict

from authz.keys import KeyRing
from authz.request import AuthRequest
from config import load_settings
from sidecar.container import build
from tests.authz.checks import answer
from tests.support.tokens import claims, sign


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.ephemeral_key("ES256")


@pytest.fixture
def container(ring):
    return build(load_settings(environ={"AUTH_SIDECAR_DYNAMIC_METADATA": "sub,jti,iss,tenant,org_id,project_id,client_id,scope,act,anonymous"}), ring)


def check_request(token: str, **headers: str) -> pb.CheckRequest:
    req = pb.CheckRequest()
    req.attributes.request.http.headers.update({"authorization": f"Bearer {token}", **headers})
    req.attributes.request.http.path = "/x"
    return req


async def grpc_answer(container, token: str, **headers: str) -> tuple[dict[str, str], list[str], dict]:
    wire = await container.authz_service.check(check_request(token, **headers), None)
    response = pb.CheckResponse.FromString(wire)
    assert response.status.code == 0
    ok = response.ok_response
    set_headers = {h.header.key: h.header.value for h in ok.headers}
    assert len(set_headers) == len(ok.headers), "a header is set twice"
    return set_headers, list(ok.headers_to_remove), MessageToDict(response.dynamic_metadata)


async def test_grpc_answers_of_one_shape_differ_only_in_the_tokens_own_part(container, ring):
    alice = sign(ring, claims(sub="alice", jti="j-alice"))
    bob = sign(ring, claims(sub="bob", jti="j-bob"))
    for _ in range(2):  # first answer encodes, the second comes from the cache
        a_headers, a_removed, a_meta = await grpc_answer(container, alice, **{"x-project": "p1"})
        b_headers, b_removed, b_meta = await grpc_answer(container, bob, **{"x-project": "p1"})
        assert a_headers == {"x-tenant-id": "acme", "x-org-id": "org-1", "x-project-id": "p1",
                             "x-client-id": "app", "x-scopes": "read write", "x-user-id": "alice"}
        assert b_headers == {**a_headers, "x-user-id": "bob"}
        assert a_removed == b_removed and "x-user-id" not in a_removed
        assert a_meta == {"sub": "alice", "jti": "j-alice", "tenant": "acme", "org_id": "org-1",
                          "project_id": "p1", "client_id": "app", "scope": "read write",
                          "iss": claims()["iss"]}
        assert b_meta == {**a_meta, "sub": "bob", "jti": "j-bob"}


async def test_a_remembered_answer_follows_the_project_and_the_token(container, ring):
    """Whole answers are remembered per shared part and token: the same token on another
    project, or past the bound of remembered answers, still gets its own answer."""
    container.authz_service._own_part._remembered = 2  # a small bound: it is passed and cleared
    tokens = [sign(ring, claims(sub=f"u{i}", jti=f"j{i}")) for i in range(3)]
    for _ in range(3):
        for i, token in enumerate(tokens):
            for project in ("p1", "p2"):
                headers, _, meta = await grpc_answer(container, token, **{"x-project": project})
                assert (headers["x-user-id"], headers["x-project-id"]) == (f"u{i}", project)
                assert (meta["sub"], meta["jti"], meta["project_id"]) == (f"u{i}", f"j{i}", project)
    assert len(container.authz_service._own_part.answers) <= 2


async def test_one_decision_is_shared_by_a_shape_and_made_whole_for_callers(container, ring):
    engine = container.engine
    a = await engine.check(AuthRequest({"authorization": f"Bearer {sign(ring, claims(sub='a', jti='1'))}"}, "/"))
    b = await engine.check(AuthRequest({"authorization": f"Bearer {sign(ring, claims(sub='b', jti='2'))}"}, "/"))
    assert a[0] is b[0] and a[0].personal
    assert (a[1].subject, b[1].subject) == ("a", "b")
    whole = await answer(engine, AuthRequest({"authorization": f"Bearer {sign(ring, claims(sub='b', jti='2'))}"},
                              "/"))
    assert dict(whole.headers)["x-user-id"] == "b" and whole.metadata["jti"] == "2"


async def test_a_token_without_sub_gets_the_user_header_removed_not_borrowed(container, ring):
    await grpc_answer(container, sign(ring, claims(sub="alice", jti="j-a")))
    headers, removed, meta = await grpc_answer(container, sign(ring, claims(sub=None, jti="j-none")))
    assert "x-user-id" not in headers and "x-user-id" in removed
    assert "sub" not in meta and meta["jti"] == "j-none"


async def test_http_answers_of_one_shape_carry_each_tokens_own_user(container, ring):
    transport = httpx.ASGITransport(app=container.http_check)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        for _ in range(2):
            for sub in ("alice", "bob"):
                token = sign(ring, claims(sub=sub, jti=f"j-{sub}"))
                r = await client.get("/ext_authz/x", headers={"authorization": f"Bearer {token}"})
                assert r.status_code == 200
                assert r.headers.get_list("x-user-id") == [sub]
                assert r.headers["x-tenant-id"] == "acme"
                assert "x-user-id" not in r.headers["x-envoy-auth-headers-to-remove"]


async def test_cache_counters_count_each_check_once(container, ring):
    # the h2 transport tries the no-I/O path first and verifies only on a miss: one miss, then one hit
    token = sign(ring, claims(sub="counted"))
    message = check_request(token).SerializeToString()
    pending = container.authz_service.check_message(message)
    assert not isinstance(pending, bytes)  # a miss needs the verifier: answered later
    assert pb.CheckResponse.FromString(await pending).status.code == 0
    assert isinstance(container.authz_service.check_message(message), bytes)  # a hit: answered at once
    metrics = container.engine.metrics
    assert (metrics.cache_misses, metrics.cache_hits) == (1, 1)


async def test_no_dynamic_metadata_unless_the_setting_names_fields(ring):
    """Off by default (Envoy pays for every field it stores); with a list, only those fields,
    and a token's own `sub`/`jti` never another token's."""
    plain = build(load_settings(environ={}), ring)
    headers, _, meta = await grpc_answer(plain, sign(ring, claims(sub="alice", jti="j-a")))
    assert headers["x-user-id"] == "alice" and meta == {}
    some = build(load_settings(environ={"AUTH_SIDECAR_DYNAMIC_METADATA": "jti,tenant"}), ring)
    for _ in range(2):
        _, _, a_meta = await grpc_answer(some, sign(ring, claims(sub="alice", jti="j-a")))
        no_jti_headers, _, no_jti_meta = await grpc_answer(some, sign(ring, claims(sub="bob", jti=None)))
        assert a_meta == {"jti": "j-a", "tenant": "acme"}
        assert no_jti_headers["x-user-id"] == "bob" and no_jti_meta == {"tenant": "acme"}


def test_an_unknown_metadata_field_is_a_configuration_error():
    from config import ConfigError

    with pytest.raises(ConfigError, match="dynamic_metadata"):
        load_settings(environ={"AUTH_SIDECAR_DYNAMIC_METADATA": "sub,password"})


async def test_a_reload_turns_dynamic_metadata_on_for_tokens_already_cached(ring):
    container = build(load_settings(environ={}), ring)
    token = sign(ring, claims(sub="alice", jti="j-a"))
    assert (await grpc_answer(container, token))[2] == {}
    await container.reconfigure(load_settings(environ={"AUTH_SIDECAR_DYNAMIC_METADATA": "sub,scope"}))
    assert (await grpc_answer(container, token))[2] == {"sub": "alice", "scope": "read write"}
    await container.reconfigure(load_settings(environ={}))
    assert (await grpc_answer(container, token))[2] == {}
