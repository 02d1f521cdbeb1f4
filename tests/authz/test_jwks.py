"""Trusted issuers' JWKS against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import random
import time

import jwt
import pytest

from authz.request import AuthRequest
from config import load_settings
from sidecar.container import build
from tests.authz.checks import answer
from tests.support.jwks_server import IssuerKey, JwksServer

ISSUER = "https://idp.example"
AUD = "orders-api"


def issuer_token(key: IssuerKey, kid: str | None = None, sub: str = "ext-user") -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": sub, "aud": AUD, "exp": now + 600, "iat": now, "scope": "read"}
    return jwt.encode(payload, key.private, algorithm="ES256", headers={"kid": kid or key.kid})


@pytest.fixture
def server():
    s = JwksServer()
    s.keys.append(IssuerKey())
    yield s
    s.stop()


@pytest.fixture
async def make():
    made = []

    async def factory(server: JwksServer, cooldown: float = 30.0, refresh: float = 300.0):
        container = await _start(server, cooldown, refresh)
        made.append(container)
        return container
    yield factory
    for container in made:
        await container.close()


async def _start(server: JwksServer, cooldown: float, refresh: float):
    trusted = json.dumps([{"issuer": ISSUER, "jwks_uri": server.uri, "audiences": [AUD]}])
    settings = load_settings(environ={"AUTH_SIDECAR_TRUSTED_ISSUERS": trusted,
                                      "AUTH_SIDECAR_JWKS__UNKNOWN_KID_COOLDOWN_SECONDS": str(cooldown),
                                      "AUTH_SIDECAR_JWKS__REFRESH_SECONDS": str(refresh)})
    container = build(settings)
    await container.start()
    return container


async def wait_ready(container, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not await container.ready():
        assert time.monotonic() < deadline, "never became ready"
        await asyncio.sleep(0.02)


async def check(container, token: str):
    return await answer(container.engine, AuthRequest({"authorization": f"Bearer {token}"}, "/"))


async def test_trusted_issuer_token_is_allowed(server, make):
    c = await make(server)
    await wait_ready(c)
    d = await check(c, issuer_token(server.keys[0]))
    assert d.allowed and dict(d.headers)["x-user-id"] == "ext-user"


async def test_key_rotation_is_picked_up(server, make):
    c = await make(server, cooldown=0)
    await wait_ready(c)
    old = server.keys[0]
    new = IssuerKey()
    server.keys = [new]  # the issuer rotates
    d = await check(c, issuer_token(new))
    assert d.allowed, d.description
    assert (await check(c, issuer_token(old, sub="other"))).status == 401  # retired key


async def test_endpoint_down_keeps_last_good_keys(server, make):
    c = await make(server, cooldown=0)
    await wait_ready(c)
    server.fail = True
    before = server.fetches
    # an unknown kid forces a refetch, which fails...
    assert (await check(c, issuer_token(IssuerKey()))).status == 401
    assert server.fetches > before
    # ...and tokens signed with the last good key still pass
    d = await check(c, issuer_token(server.keys[0], sub="fresh-user"))
    assert d.allowed
    assert c.metrics.jwks_failures >= 1


async def test_random_unknown_kids_cause_at_most_a_handful_of_fetches(server, make):
    c = await make(server, cooldown=30)
    await wait_ready(c)
    before = server.fetches
    attacker = IssuerKey()
    tokens = [issuer_token(attacker, kid=f"kid-{random.getrandbits(64):x}", sub=f"u{i}") for i in range(1000)]
    results = await asyncio.gather(*(check(c, t) for t in tokens))
    assert all(r.status == 401 for r in results)
    assert server.fetches - before <= 3, server.fetches - before


async def test_unknown_kid_refetch_is_single_flight(server, make):
    c = await make(server, cooldown=0)
    await wait_ready(c)
    new = IssuerKey()
    server.keys.append(new)
    before = server.fetches
    results = await asyncio.gather(*(check(c, issuer_token(new, sub=f"u{i}")) for i in range(50)))
    assert all(r.allowed for r in results)
    assert server.fetches - before <= 2


async def test_not_ready_until_first_keys_load(server, make):
    server.fail = True
    c = await make(server)
    await asyncio.sleep(0)  # let the background fetch start
    assert not await c.ready()
    assert (await check(c, issuer_token(server.keys[0]))).status == 401
    server.fail = False
    await wait_ready(c)
    assert (await check(c, issuer_token(server.keys[0], sub="later"))).allowed
