"""Tracing, in process through the real adapters and the SDK's in-memory exporter: a Check
span per ext_authz request in both modes, continuing the caller's W3C trace context, with
the decision, status, reason, cache hit and mode; a token request span with a child span per
store call; never a token, a secret or a password in an attribute."""

from __future__ import annotations

import time

import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from authz.keys import KeyRing
from authz.now_or_later import Later, settled
from config import load_settings
from sidecar.container import build
from tests.support.tokens import claims, sign

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
ADMIN = "tracing-admin-token-0123456789"
DATE = b"date: Sat, 28 Nov 2026 10:00:00 GMT\r\n"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.ephemeral_key("ES256")


@pytest.fixture
async def traced(ring):
    exporter = InMemorySpanExporter()
    settings = load_settings(environ={"AUTH_SIDECAR_TRACING__ENABLED": "true", "AUTH_SIDECAR_TRACING__EXPORTER": "none",
                                      "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN})
    c = build(settings, ring, span_exporter=exporter)
    await c.start()

    def spans(name: str | None = None):
        c.tracing.provider.force_flush()
        return [s for s in exporter.get_finished_spans() if name is None or s.name == name]
    c.spans = spans
    yield c
    await c.close()


def check_request(token: str | None, **headers: str) -> bytes:
    req = pb.CheckRequest()
    if token:
        headers["authorization"] = f"Bearer {token}"
    req.attributes.request.http.headers.update(headers)
    req.attributes.request.http.path = "/x"
    req.attributes.request.http.method = "GET"
    return req.SerializeToString()


def assert_child_of_caller(span) -> None:
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert f"{span.parent.span_id:016x}" == PARENT_ID


async def test_grpc_check_span_continues_the_callers_trace_and_tells_a_cache_hit(traced, ring):
    token = sign(ring, claims(sub="alice"))
    message = check_request(token, traceparent=TRACEPARENT, tracestate="vendor=v1", **{"x-project": "p1"})
    first = await settled(traced.authz_service.check_message(message))
    second = traced.authz_service.check_message(message)
    assert type(second) is not Later and second == first  # a hit still answers now, traced
    spans = traced.spans("ext_authz.check")
    assert len(spans) == 2
    for span, hit in zip(spans, (False, True)):
        assert_child_of_caller(span)
        assert span.context.trace_state.get("vendor") == "v1"
        assert span.kind is SpanKind.SERVER
        assert dict(span.attributes) == {"authz.mode": "grpc", "authz.decision": "allow", "authz.status": 200,
                                         "authz.reason": "ok", "authz.cache_hit": hit}


async def test_grpc_deny_span_carries_the_reason(traced, ring):
    expired = sign(ring, claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))
    wire = await settled(traced.authz_service.check_message(check_request(expired, traceparent=TRACEPARENT)))
    assert pb.CheckResponse.FromString(wire).denied_response.status.code == 401
    [span] = traced.spans("ext_authz.check")
    assert_child_of_caller(span)
    assert (span.attributes["authz.decision"], span.attributes["authz.status"], span.attributes["authz.reason"],
            span.attributes["authz.cache_hit"]) == ("deny", 401, "expired", False)


async def test_a_check_without_trace_context_starts_its_own_trace(traced, ring):
    traced.authz_service.check_message(check_request(None))
    [span] = traced.spans("ext_authz.check")
    assert span.parent is None and span.context.trace_id != int(TRACE_ID, 16)
    assert span.attributes["authz.reason"] == "missing_token"


async def test_http_mode_inline_and_asgi_paths_make_the_same_span(traced, ring):
    token = sign(ring, claims(sub="bob"))
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"traceparent", TRACEPARENT.encode())]
    # the inline fast path (transport/http/protocol.py): a miss comes later, then a hit now
    pending = traced.http_check.answer_now(b"GET", "/x", headers, DATE)
    assert type(pending) is Later
    traced.http_check.raw_answer(*(await pending), DATE)
    hit = traced.http_check.answer_now(b"GET", "/x", headers, DATE)
    assert hit.startswith(b"HTTP/1.1 200 ")
    # the ASGI path: a missing token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=traced.http_check), base_url="http://s") as h:
        r = await h.get("/ext_authz/x", headers={"traceparent": TRACEPARENT})
    assert r.status_code == 401
    spans = traced.spans("ext_authz.check")
    assert [(s.attributes["authz.mode"], s.attributes["authz.decision"], s.attributes["authz.reason"],
             s.attributes["authz.cache_hit"]) for s in spans] == [
        ("http", "allow", "ok", False), ("http", "allow", "ok", True), ("http", "deny", "missing_token", False)]
    for span in spans:
        assert_child_of_caller(span)


async def test_token_request_span_has_store_call_children_and_no_secret(traced):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=traced.app), base_url="http://s",
                                 headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        assert (await admin.post("/admin/tenants", json={"id": "acme", "name": "Acme"})).status_code == 201
        r = await admin.post("/admin/tenants/acme/clients",
                             json={"name": "svc", "grant_types": ["client_credentials"], "scopes": ["read"]})
        assert r.status_code == 201
    client_id, secret = r.json()["client_id"], r.json()["client_secret"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=traced.app), base_url="http://s") as h:
        ok = await h.post("/oauth/token", auth=(client_id, secret), headers={"traceparent": TRACEPARENT},
                          data={"grant_type": "client_credentials", "scope": "read"})
        bad = await h.post("/oauth/token", auth=(client_id, "not-the-secret"),
                           data={"grant_type": "client_credentials"})
    assert ok.status_code == 200 and bad.status_code == 401
    spans = traced.spans()
    tokens = [s for s in spans if s.name == "oauth.token"]
    assert len(tokens) == 2
    good, refused = tokens
    assert_child_of_caller(good)
    assert {k: good.attributes[k] for k in ("oauth.grant_type", "oauth.client_id", "http.response.status_code")} == {
        "oauth.grant_type": "client_credentials", "oauth.client_id": client_id, "http.response.status_code": 200}
    assert "oauth.error" not in good.attributes
    assert refused.attributes["oauth.error"] == "invalid_client" and "oauth.client_id" not in refused.attributes
    for request in (good, refused):
        children = [s for s in spans if s.parent is not None and s.parent.span_id == request.context.span_id]
        assert children and all(s.name.startswith("store.") and s.kind is SpanKind.CLIENT for s in children)
        assert all(s.context.trace_id == request.context.trace_id for s in children)
        assert all(s.attributes["db.system"] == "memory" for s in children)
    secrets = (secret, "not-the-secret", ok.json()["access_token"], ADMIN)
    for span in spans:
        for value in span.attributes.values():
            assert not any(s in str(value) for s in secrets), (span.name, value)
