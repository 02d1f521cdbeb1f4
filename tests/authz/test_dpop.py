"""DPoP proofs (RFC 9449 §4.3) and the engine's binding check, in-process. Proofs are made by
requests-oauth2client (a client library no one here wrote), bad ones by hand."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from requests_oauth2client import DPoPKey

from authz.dpop import ProofChecker, ProofError, b64url_sha256, normalize_url
from authz.dpop_nonce import Nonces
from authz.dpop_replay import ReplayCache
from authz.keys import KeyRing
from authz.request import AuthRequest, Origin
from config import load_settings
from sidecar.container import build
from tests.authz.checks import answer
from tests.support.tokens import b64, claims, sign

URL = "https://api.example.com/orders"


def proof(key: DPoPKey, htm: str = "GET", htu: str = URL, token: str | None = None, nonce: str | None = None) -> str:
    return str(key.proof(htm=htm, htu=htu, ath=b64url_sha256(token) if token else None, nonce=nonce))


def hand_proof(header: dict, payload: dict, private_key=None, alg: str = "ES256") -> str:
    if private_key is None:
        return f"{b64(json.dumps(header))}.{b64(json.dumps(payload))}.{b64(b'sig')}"
    return jwt.encode(payload, private_key, algorithm=alg, headers=header)


def ec_jwk(private_key) -> dict:
    return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))


def good_payload(**over) -> dict:
    return {"jti": f"j-{time.time_ns()}", "htm": "GET", "htu": URL, "iat": int(time.time()), **over}


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey.generate(alg="ES256")


def test_library_proof_is_accepted_and_names_its_key(key):
    checked = ProofChecker().check(proof(key), "GET", normalize_url(URL))
    assert checked.jkt == key.dpop_jkt


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_every_algorithm_of_the_allow_list(alg):
    key = DPoPKey.generate(alg=alg)
    assert ProofChecker().check(proof(key), "GET", normalize_url(URL)).jkt == key.dpop_jkt


def test_htu_is_compared_after_normalisation(key):
    checker = ProofChecker()
    for htu in ("HTTPS://API.example.com:443/orders", "https://api.example.com/orders?page=2#top"):
        checker.check(proof(key, htu=htu), "GET", normalize_url(URL))


def bad_proofs(key: DPoPKey) -> dict[str, tuple[str, str]]:
    """case → (proof, the words its refusal must name)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = ec_jwk(ec_key)
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    return {
        "other method": (proof(key, htm="POST"), "htm"),
        "other URL": (proof(key, htu="https://api.example.com/admin"), "htu"),
        "other host": (proof(key, htu="https://evil.example.com/orders"), "htu"),
        "alg none": (hand_proof({**header, "alg": "none"}, good_payload()), "alg"),
        "HS256": (jwt.encode(good_payload(), "k" * 32, algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": jwk}),
                  "alg"),
        "typ JWT": (hand_proof({**header, "typ": "JWT"}, good_payload(), ec_key), "typ"),
        "no jwk": (hand_proof({"typ": "dpop+jwt", "alg": "ES256"}, good_payload(), ec_key), "jwk"),
        "private jwk": (hand_proof({**header, "jwk": private}, good_payload(), ec_key), "public key"),
        "jwk of another type": (hand_proof({**header, "jwk": rsa_jwk}, good_payload(), ec_key), "fit"),
        "signed by another key": (hand_proof(header, good_payload(), ec.generate_private_key(ec.SECP256R1())),
                                  "signature"),
        "no jti": (hand_proof(header, {k: v for k, v in good_payload().items() if k != "jti"}, ec_key), "jti"),
        "stale iat": (hand_proof(header, good_payload(iat=int(time.time()) - 3600), ec_key), "too old"),
        "future iat": (hand_proof(header, good_payload(iat=int(time.time()) + 3600), ec_key), "future"),
        "iat as text": (hand_proof(header, good_payload(iat=str(int(time.time()))), ec_key), "iat"),
        "two values": (proof(key) + ", " + proof(key), "one DPoP header"),
        "garbage": ("not-a-jwt", "compact JWS"),
        "oversized": ("a" * 10_000 + ".b.c", "too large"),
        "bad base64 header": ("%%%.e30.c2ln", "valid JWT"),
    }


def test_each_bad_proof_is_refused_naming_the_problem(key):
    checker = ProofChecker()
    for case, (value, words) in bad_proofs(key).items():
        with pytest.raises(ProofError) as refused:
            checker.check(value, "GET", normalize_url(URL))
        assert words in refused.value.description, case
        assert refused.value.error == "invalid_dpop_proof", case


def test_ath_binds_the_proof_to_the_access_token(key):
    checker = ProofChecker()
    checker.check(proof(key, token="at-1"), "GET", normalize_url(URL), "at-1")
    with pytest.raises(ProofError, match="ath"):
        checker.check(proof(key, token="at-2"), "GET", normalize_url(URL), "at-1")
    with pytest.raises(ProofError, match="ath"):
        checker.check(proof(key), "GET", normalize_url(URL), "at-1")


def test_replay_cache_refuses_a_jti_until_its_window_ends():
    now = [1000.0]
    cache = ReplayCache(1000, clock=lambda: now[0])
    assert cache.first_use("a", 1060) and not cache.first_use("a", 1060)
    now[0] = 1061
    assert cache.first_use("a", 1121)


def test_a_full_replay_cache_narrows_the_window_instead_of_forgetting():
    now = [1000.0]
    cache = ReplayCache(1000, clock=lambda: now[0])
    for i in range(1001):
        assert cache.first_use(f"k{i}", 1060 + i * 0.001)
    assert len(cache) == 1000
    assert not cache.first_use("k0", 1060)  # forgotten, still refused
    assert cache.first_use("fresh", 1061)  # newer proofs keep working


def test_nonce_of_another_replica_is_accepted_and_expires():
    now = [6000.0]
    a, b = Nonces(b"s" * 32, 60, clock=lambda: now[0]), Nonces(b"s" * 32, 60, clock=lambda: now[0])
    nonce = a.current()
    assert b.valid(nonce)
    now[0] += 60
    assert b.valid(nonce)
    now[0] += 60
    assert not b.valid(nonce) and b.valid(b.current())
    assert not Nonces(b"t" * 32, 60, clock=lambda: now[0]).valid(b.current())


# --- the engine: Authorization: DPoP + DPoP proof, as Envoy describes the request ----------

@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.ephemeral_key("ES256")


def engine_for(ring: KeyRing, **env: str):
    return build(load_settings(environ=env), ring).engine


def request(token: str, scheme: str = "DPoP", dpop: str | None = None, method: str = "GET",
            path: str = "/orders?page=2") -> AuthRequest:
    headers = {"authorization": f"{scheme} {token}"}
    if dpop is not None:
        headers["dpop"] = dpop
    return AuthRequest(headers, path, method, {}, None, lambda _: Origin("https", "api.example.com"))


async def test_bound_token_with_fresh_proofs_hit_and_miss(ring, key):
    engine = engine_for(ring)
    token = sign(ring, claims(cnf={"jkt": key.dpop_jkt}))
    for _ in range(3):  # the first verifies the token, the next are cache hits: each checks its proof
        got = await answer(engine, request(token, dpop=proof(key, token=token)))
        assert got.allowed, got.description
    assert engine.metrics.cache_hits == 2


async def test_refusals_carry_the_dpop_challenge(ring, key):
    engine = engine_for(ring)
    token = sign(ring, claims(cnf={"jkt": key.dpop_jkt}))
    replayed = proof(key, token=token)
    assert (await answer(engine, request(token, dpop=replayed))).allowed
    cases = {
        "as Bearer": request(token, scheme="Bearer", dpop=proof(key, token=token)),
        "no proof": request(token),
        "replayed": request(token, dpop=replayed),
        "other method": request(token, dpop=proof(key, htm="POST", token=token)),
        "other URL": request(token, dpop=proof(key, htu="https://api.example.com/admin", token=token)),
        "other key": request(token, dpop=proof(DPoPKey.generate(), token=token)),
        "unbound token": request(sign(ring, claims(jti="j-2")), dpop=proof(key, token=token)),
    }
    for case, req in cases.items():
        got = await answer(engine, req)
        assert got.status == 401, case
        challenge = got.decision.www_authenticate
        assert challenge.startswith("DPoP ") and 'algs="ES256' in challenge, (case, challenge)
        assert 'error="invalid_dpop_proof"' in challenge or 'error="invalid_token"' in challenge, case


async def test_plain_bearer_tokens_are_unchanged(ring):
    engine = engine_for(ring)
    got = await answer(engine, request(sign(ring), scheme="Bearer"))
    assert got.allowed and got.decision.www_authenticate.startswith("Bearer")


async def test_a_missing_token_is_challenged_for_both_schemes_with_the_configured_algs(ring):
    engine = engine_for(ring, AUTH_SIDECAR_DPOP__ALGS="ES256,EdDSA")
    no_token = AuthRequest({}, "/orders", "GET", {}, None, lambda _: Origin("https", "api.example.com"))
    first, again = await answer(engine, no_token), await answer(engine, no_token)
    assert first.status == 401 and first.reason == "missing_token" and first.error == ""
    # RFC 9449 §7.2 / RFC 6750 §3: both schemes, no error code (no token was sent)
    assert first.decision.www_authenticate == ('Bearer realm="auth-sidecar", '
                                               'DPoP realm="auth-sidecar", algs="ES256 EdDSA"')
    assert json.loads(first.decision.body)["error"] == "unauthorized"
    assert first.decision is again.decision  # one constant: its encodings are memoised like any deny's


async def test_without_a_dpop_binding_a_missing_token_gets_the_bearer_challenge_alone(ring):
    from authz.decision import MISSING_TOKEN
    from authz.engine import Engine

    built = engine_for(ring)
    engine = Engine(built.extractor, built.verifier, built.cache, built.rules, built.mutator, built.metrics)
    got = await answer(engine, AuthRequest({}, "/orders"))
    assert got.decision is MISSING_TOKEN and got.decision.www_authenticate == 'Bearer realm="auth-sidecar"'


async def test_route_base_url_is_the_htu_of_requests_through_a_gateway(ring, key):
    engine = engine_for(ring, AUTH_SIDECAR_ROUTES='[{"path_prefix": "/orders", '
                                                  '"dpop_base_url": "https://gw.example.com/shop"}]')
    token = sign(ring, claims(cnf={"jkt": key.dpop_jkt}))
    assert not (await answer(engine, request(token, dpop=proof(key, token=token)))).allowed
    got = await answer(engine, request(token, dpop=proof(key, htu="https://gw.example.com/shop/orders", token=token)))
    assert got.allowed, got.description


async def test_nonce_flow(ring, key):
    engine = engine_for(ring, AUTH_SIDECAR_DPOP__NONCES="true", AUTH_SIDECAR_DPOP__NONCE_SECRET="n" * 32)
    token = sign(ring, claims(cnf={"jkt": key.dpop_jkt}))
    first = await answer(engine, request(token, dpop=proof(key, token=token)))
    assert first.status == 401 and first.error == "use_dpop_nonce" and first.decision.nonce
    assert 'error="use_dpop_nonce"' in first.decision.www_authenticate
    got = await answer(engine, request(token, dpop=proof(key, token=token, nonce=first.decision.nonce)))
    assert got.allowed, got.description


def test_dpop_settings_name_the_key_when_wrong():
    from config import ConfigError

    assert load_settings(environ={"AUTH_SIDECAR_DPOP__ALGS": "ES256, EdDSA"}).dpop.algs == ("ES256", "EdDSA")
    for env, words in (({"AUTH_SIDECAR_DPOP__ALGS": "HS256"}, "dpop.algs"),
                       ({"AUTH_SIDECAR_DPOP__NONCES": "true"}, "dpop.nonce_secret"),
                       ({"AUTH_SIDECAR_ROUTES": '[{"path_prefix": "/", "dpop_base_url": "api.example.com"}]'},
                        "dpop_base_url")):
        with pytest.raises(ConfigError, match=words):
            load_settings(environ=env)


def test_a_nan_iat_is_refused_not_kept_forever():
    """JSON as Python reads it has NaN: an `iat` of NaN passed both window checks, and its
    jti was then kept until NaN (never refused as a replay; the Redis store raised). The
    payload parser (orjson) refuses `NaN` and `Infinity`, which are no JSON, outright."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": ec_jwk(ec_key)}
    for iat in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ProofError, match="iat|too old|not a valid JWT"):
            ProofChecker().check(hand_proof(header, good_payload(iat=iat), ec_key), "GET", normalize_url(URL))
