"""Opaque tokens through an external RFC 7662 endpoint (client credentials), cached; negative caching opt-in."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from authz.keys import KeyRing
from authz.request import AuthRequest
from config import load_settings
from sidecar.container import build
from tests.authz.checks import answer
from tests.support.net import free_port


class Introspection:
    def __init__(self) -> None:
        self.port = free_port()
        self.calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.calls += 1
                form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                ok_auth = self.headers.get("authorization") == "Basic " + base64.b64encode(b"rs:rs-secret").decode()
                token = form.get("token", [""])[0]
                if not ok_auth:
                    self.send_response(401)
                    self.end_headers()
                    return
                if token == "opaque-good":
                    answer = {"active": True, "sub": "svc-9", "tenant": "acme", "scope": "read",
                              "client_id": "c1", "exp": int(time.time()) + 600}
                elif token == "opaque-refresh":
                    answer = {"active": True, "token_type": "refresh_token", "sub": "u"}
                else:
                    answer = {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    e = Introspection()
    yield e
    e.stop()


def engine_for(endpoint: Introspection, secret: str = "rs-secret", negative_ttl: str = "0"):
    conf = json.dumps({"url": f"http://127.0.0.1:{endpoint.port}/introspect", "client_id": "rs",
                       "client_secret": secret})
    return build(load_settings(environ={"AUTH_SIDECAR_INTROSPECTION": conf,
                                        "AUTH_SIDECAR_CACHE__NEGATIVE_TTL_SECONDS": negative_ttl}),
                 KeyRing.ephemeral_key("ES256"))


async def check(container, token: str):
    return await answer(container.engine, AuthRequest({"authorization": f"Bearer {token}"}, "/"))


async def test_active_opaque_token_is_allowed_and_cached(endpoint):
    c = engine_for(endpoint)
    try:
        first = await check(c, "opaque-good")
        assert first.allowed and dict(first.headers)["x-user-id"] == "svc-9"
        assert (await check(c, "opaque-good")).allowed
        assert endpoint.calls == 1  # the second Check came from the cache
    finally:
        await c.close()


async def test_inactive_refresh_and_unauthorised_are_401(endpoint):
    c = engine_for(endpoint)
    try:
        assert (await check(c, "opaque-unknown")).status == 401
        refused = await check(c, "opaque-refresh")
        assert refused.status == 401 and "refresh" in refused.description
    finally:
        await c.close()
    bad = engine_for(endpoint, secret="wrong")
    try:
        assert (await check(bad, "opaque-good")).status == 401  # endpoint refused us: deny, never allow
    finally:
        await bad.close()


async def test_negative_caching_is_opt_in(endpoint):
    for negative_ttl, token, calls_after in (("0", "opaque-unknown", 2), ("5", "opaque-nope", 3)):
        engine = engine_for(endpoint, negative_ttl=negative_ttl)
        try:
            await check(engine, token)
            await check(engine, token)
            assert endpoint.calls == calls_after, negative_ttl
        finally:
            await engine.close()
