"""The shortcuts of the DPoP Check's hot path refuse what the long way refused: the request URL
memo (per scheme, host and path), the per-header key cache, the payload parser (orjson), the
one-pass base64url decoder, the DER built from a JWS ECDSA signature, the EC check hashing
apart from the signature check, and the replay cache."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from requests_oauth2client import DPoPKey

from authz import jose
from authz.dpop import ProofChecker, ProofError, b64url_sha256, normalize_url
from authz.dpop_replay import ReplayCache
from authz.keys import KeyRing, VerificationKey, raw_to_der
from authz.request import AuthRequest, Origin
from config import load_settings
from sidecar.container import build
from tests.authz.checks import answer
from tests.support.tokens import claims, sign

URL = "https://api.example.com/orders"


def proof(key: DPoPKey, htu: str, token: str) -> str:
    return str(key.proof(htm="GET", htu=htu, ath=b64url_sha256(token)))


def at(token: str, dpop: str, scheme: str, host: str, path: str) -> AuthRequest:
    return AuthRequest({"authorization": f"DPoP {token}", "dpop": dpop}, path, "GET", {}, None,
                       lambda _: Origin(scheme, host))


async def test_the_url_memo_never_answers_for_another_scheme_host_or_path():
    ring, key = KeyRing.ephemeral_key("ES256"), DPoPKey.generate(alg="ES256")
    engine = build(load_settings(environ={}), ring).engine
    token = sign(ring, claims(cnf={"jkt": key.dpop_jkt}))
    seen = ("https", "api.example.com", "/orders")
    for _ in range(2):  # the second time from the memo
        assert (await answer(engine, at(token, proof(key, URL, token), *seen[:2], "/orders?page=2"))).allowed
    others = {("http", "api.example.com", "/orders"): "http://api.example.com/orders",
              ("https", "other.example.com", "/orders"): "https://other.example.com/orders",
              ("https", "api.example.com", "/Orders"): "https://api.example.com/Orders",
              ("https", "api.example.com:8443", "/orders"): "https://api.example.com:8443/orders"}
    for (scheme, host, path), url in others.items():
        refused = await answer(engine, at(token, proof(key, URL, token), scheme, host, path))
        assert refused.status == 401 and "htu" in refused.description, url
        assert (await answer(engine, at(token, proof(key, url, token), scheme, host, path))).allowed, url


def test_a_cached_header_never_lends_its_key_to_another_signer():
    mine, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(mine.public_key()))
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    checker = ProofChecker()

    def payload() -> dict:
        return {"jti": f"j-{time.time_ns()}", "htm": "GET", "htu": URL, "iat": int(time.time())}

    jkt = checker.check(jwt.encode(payload(), mine, algorithm="ES256", headers=header), "GET", URL).jkt
    with pytest.raises(ProofError, match="signature"):  # my header (cached), another key's signature
        checker.check(jwt.encode(payload(), other, algorithm="ES256", headers=header), "GET", URL, jkt=jkt)
    theirs = DPoPKey.generate(alg="ES256")
    checker.check(str(theirs.proof(htm="GET", htu=URL)), "GET", URL)  # both headers cached now
    with pytest.raises(ProofError, match="bound to"):
        checker.check(str(theirs.proof(htm="GET", htu=URL)), "GET", URL, jkt=jkt)


@pytest.mark.parametrize("case", ["NaN iat", "Infinity iat", "lone surrogate jti", "array"])
def test_payloads_beyond_rfc_8259_are_refused_not_replayable(case):
    """Python's json reads `NaN` (an iat no comparison refuses: its jti would be kept until NaN,
    i.e. never) and lone surrogates (a jti no replay key can encode)."""
    private = ec.generate_private_key(ec.SECP256R1())
    header = {"typ": "dpop+jwt", "alg": "ES256",
              "jwk": json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))}
    body = {"jti": "j-1", "htm": "GET", "htu": URL, "iat": int(time.time())}
    text = {"NaN iat": json.dumps({**body, "iat": float("nan")}),
            "Infinity iat": json.dumps({**body, "iat": float("inf")}),
            "lone surrogate jti": json.dumps({**body, "jti": "\ud800"}),
            "array": json.dumps([body])}[case]
    signing_input = f"{jose_b64(json.dumps(header))}.{jose_b64(text)}"
    signature = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(signing_input.encode(), private)
    value = f"{signing_input}.{jose_b64(signature)}"
    replays = ReplayCache()
    for _ in range(2):
        with pytest.raises(ProofError, match="not a valid JWT"):
            replays.first_use(ProofChecker().check(value, "GET", URL).replay_key, 0)


def jose_b64(data: str | bytes) -> str:
    return base64.urlsafe_b64encode(data.encode() if isinstance(data, str) else data).rstrip(b"=").decode()


@pytest.mark.parametrize("segment", ["ab+c", "ab/c", "abc=", "YQ==", "YWJj=", "a", "abcde", "YR", "YWJ", "éab",
                                     "ab c", "ab*c", "ab.c"])
def test_base64url_refuses_what_is_not_canonical_base64url(segment):
    with pytest.raises(jose.TokenError, match="base64url"):
        jose.b64url_decode(segment)


@pytest.mark.parametrize(("segment", "data"), [("", b""), ("YQ", b"a"), ("YWI", b"ab"), ("YWJj", b"abc"),
                                               ("-_8", b"\xfb\xff")])
def test_base64url_decodes_canonical_segments(segment, data):
    assert jose.b64url_decode(segment) == data


@pytest.mark.parametrize("size", [32, 48, 66])
def test_der_from_a_jws_signature_is_what_cryptography_builds(size):
    edges = [bytes(size), b"\x01".rjust(size, b"\0"), b"\x80" + bytes(size - 1), b"\xff" * size,
             b"\x00\x80" + b"\x01" * (size - 2), b"\x00\x7f" + b"\xff" * (size - 2)]
    for r in edges:
        for s in edges:
            expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            assert raw_to_der(r + s, size) == expected, (r.hex(), s.hex())


def test_normalize_url_is_what_the_memo_keeps():
    assert normalize_url("HTTPS://API.example.com:443/orders") == URL


def test_the_replay_cache_refuses_a_window_already_over_or_not_a_number():
    now = [1000.0]
    cache = ReplayCache(1000, clock=lambda: now[0])
    assert not cache.first_use("past", 999.0)
    assert not cache.first_use("nan", float("nan")) and not cache.first_use("nan", float("nan"))
    assert cache.first_use("fresh", 1060.0) and not cache.first_use("fresh", 1060.0)


@pytest.mark.parametrize(("alg", "curve", "hash_alg"), [("ES256", ec.SECP256R1, hashes.SHA256),
                                                        ("ES384", ec.SECP384R1, hashes.SHA384),
                                                        ("ES512", ec.SECP521R1, hashes.SHA512)])
def test_ec_checks_hash_with_their_own_algorithm(alg, curve, hash_alg):
    """The digest is taken apart from the signature check: each algorithm's own hash, and a
    signature over another hash of the same input never verifies."""
    private = ec.generate_private_key(curve())
    key, size = VerificationKey("k", alg, private.public_key()), (private.curve.key_size + 7) // 8

    def jws(signature: bytes) -> bytes:
        r, s = decode_dss_signature(signature)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    message = b"header.payload"
    assert key.verify(message, jws(private.sign(message, ec.ECDSA(hash_alg()))))
    assert not key.verify(message + b"x", jws(private.sign(message, ec.ECDSA(hash_alg()))))
    other = hashes.SHA256 if hash_alg is not hashes.SHA256 else hashes.SHA384
    assert not key.verify(message, jws(private.sign(message, ec.ECDSA(other()))))
