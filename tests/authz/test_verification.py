"""The verification matrix: every bad token is a 401, never an allow, never an exception."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authz.keys import KeyRing, public_jwk, public_pem
from authz.request import AuthRequest
from config import load_settings
from sidecar.container import build
from tests.authz.checks import answer
from tests.support.tokens import b64, claims, raw, sign


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.ephemeral_key("ES256")


@pytest.fixture
def engine(ring: KeyRing):
    container = build(load_settings(environ={}), ring)
    return container.engine


async def decide(engine, token: str, **headers: str):
    return await answer(engine, AuthRequest({"authorization": f"Bearer {token}", **headers}, "/x"))


def attacker_token(**headers) -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims(), other, algorithm="ES256", headers={"typ": "at+jwt", **headers})


def bad_tokens(ring: KeyRing) -> dict[str, str]:
    kid = ring.current.kid
    good = sign(ring)
    h, p, s = good.split(".")
    pub_pem = public_pem(ring.current.private_key.public_key())
    attacker = ec.generate_private_key(ec.SECP256R1())
    tampered_payload = b64(json.dumps(claims(sub="admin")))
    return {
        "alg none": raw({"alg": "none", "kid": kid, "typ": "at+jwt"}, claims(), b""),
        "alg none with sig": raw({"alg": "none", "kid": kid, "typ": "at+jwt"}, claims()),
        "hmac with public key": _hmac_with_public_key(kid, pub_pem),
        "embedded jwk": jwt.encode(claims(), attacker, algorithm="ES256", headers={
            "kid": kid, "typ": "at+jwt", "jwk": public_jwk(kid, "ES256", attacker.public_key())}),
        "jku header": sign(ring, jku="http://evil.example/jwks.json"),
        "x5u header": sign(ring, x5u="http://evil.example/cert.pem"),
        "x5c header": sign(ring, x5c=["MIIB"]),
        "crit header": sign(ring, crit=["exp"]),
        "expired": sign(ring, claims(exp=int(time.time()) - 3600)),
        "not yet valid": sign(ring, claims(nbf=int(time.time()) + 3600)),
        "issued in the future": sign(ring, claims(iat=int(time.time()) + 3600)),
        "no exp": sign(ring, claims(exp=None)),
        "wrong iss": sign(ring, claims(iss="https://evil.example")),
        "wrong aud": sign(ring, claims(aud="https://other.example")),
        "no aud": sign(ring, claims(aud=None)),
        "tampered payload": f"{h}.{tampered_payload}.{s}",
        "signed by another key": attacker_token(kid=kid),
        "signature one byte short": f"{h}.{p}.{b64(raw_signature(s)[:-1])}",
        "DER signature": f"{h}.{p}.{b64(der_signature(raw_signature(s)))}",
        "r and s swapped": f"{h}.{p}.{b64(raw_signature(s)[32:] + raw_signature(s)[:32])}",
        "unknown kid": sign(ring, kid="no-such-kid"),
        "refresh token typ": sign(ring, typ="rt+jwt"),
        "refresh claim": sign(ring, claims(token_use="refresh")),
        "not at+jwt": sign(ring, typ="JWT"),
        "64 KB token": sign(ring, claims(pad="x" * 65536)),
        "broken base64": f"{h}.{p[:-3]}!!!.{s}",
        "json array payload": raw({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, [1, 2, 3]),
        "header not json": f"{b64('not json')}.{p}.{s}",
        "5-part JWE": "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d",
        "two parts": f"{h}.{p}",
        "CR/LF in tenant": sign(ring, claims(tenant="acme\r\nx-evil: 1")),
        "LF in sub": sign(ring, claims(sub="u\nx")),
        "NUL in scope": sign(ring, claims(scope="read\x00")),
        "string exp": sign(ring, claims(exp="tomorrow")),
        "opaque garbage": "opaque-token-without-dots",
    }


def raw_signature(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def der_signature(raw_sig: bytes) -> bytes:
    """The same ES256 signature in DER, as OpenSSL writes it (JWS wants r || s)."""
    return encode_dss_signature(int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big"))


def _hmac_with_public_key(kid: str, pub_pem: bytes) -> str:
    import hashlib
    import hmac

    header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "at+jwt"}))
    payload = b64(json.dumps(claims()))
    sig = hmac.new(pub_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


async def test_good_token_is_allowed_with_identity_headers(engine, ring):
    d = await decide(engine, sign(ring), **{"x-project": "p2"})
    assert d.allowed and d.status == 200
    assert dict(d.headers) == {"x-tenant-id": "acme", "x-org-id": "org-1", "x-project-id": "p2",
                               "x-user-id": "user-1", "x-client-id": "app", "x-scopes": "read write"}


def test_matrix_covers_every_case(ring):
    assert len(bad_tokens(ring)) >= 30


@pytest.mark.parametrize("case", list(bad_tokens(KeyRing.ephemeral_key("ES256")).keys()))
async def test_bad_token_is_401(engine, ring, case):
    token = bad_tokens(ring)[case]
    d = await decide(engine, token)
    assert not d.allowed, case
    assert d.status == 401, (case, d.status, d.description)
    assert d.error == "invalid_token"
    assert d.description and "\n" not in d.description
    assert 'error="invalid_token"' in d.www_authenticate


async def test_missing_token_is_401_without_error_code(engine):
    d = await answer(engine, AuthRequest({}, "/x"))
    assert d.status == 401 and d.error == ""
    # the sidecar accepts DPoP too: both challenges, neither with an error code (RFC 9449 §7.2)
    assert d.www_authenticate == ('Bearer realm="auth-sidecar", '
                                  'DPoP realm="auth-sidecar", algs="ES256 ES384 ES512 RS256 PS256 EdDSA"')
    assert json.loads(d.body)["error_description"]


async def test_x_auth_token_header_is_a_token_source(engine, ring):
    d = await answer(engine, AuthRequest({"x-auth-token": sign(ring)}, "/x"))
    assert d.allowed


async def test_cookie_and_query_sources_are_off_by_default(engine, ring):
    t = sign(ring)
    assert (await answer(engine, AuthRequest({"cookie": f"access_token={t}"}, "/x"))).status == 401
    assert (await answer(engine, AuthRequest({}, f"/x?access_token={t}"))).status == 401


async def test_cookie_and_query_sources_when_enabled(ring):
    settings = load_settings(environ={"AUTH_SIDECAR_TOKEN_SOURCES__COOKIE": "session",
                                      "AUTH_SIDECAR_TOKEN_SOURCES__QUERY_PARAM": "access_token"})
    engine = build(settings, ring).engine
    t = sign(ring)
    assert (await answer(engine, AuthRequest({"cookie": f"a=b; session={t}"}, "/x"))).allowed
    assert (await answer(engine, AuthRequest({}, f"/x?access_token={t}"))).allowed


async def test_leeway_accepts_a_just_expired_token(engine, ring):
    assert (await decide(engine, sign(ring, claims(exp=int(time.time()) - 5)))).allowed


async def test_refresh_token_rejected_even_when_cached_access_token_is_fine(engine, ring):
    assert (await decide(engine, sign(ring))).allowed
    assert (await decide(engine, sign(ring, typ="rt+jwt"))).status == 401


async def test_non_finite_times_are_refused(engine, ring):
    """Python's JSON reads NaN and Infinity: an `exp` of NaN compared as never expired."""
    for name in ("exp", "nbf", "iat"):
        for value in (float("nan"), float("inf"), 10 ** 400):
            got = await decide(engine, sign(ring, claims(jti=f"{name}-{value}", **{name: value})))
            assert got.status == 401 and got.reason in ("bad_claim", "not_yet_valid"), (name, value, got.reason)
