"""Certificate-bound tokens at the engine (authz/mtls.py): which certificate a request presents
(XFCC from a trusted hop, else the CheckRequest's peer certificate), thumbprints, and the
engine's per-request check of a cached bound token."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import quote

import pytest

from authz import mtls
from authz.cache import TokenCache, token_key
from authz.engine import Engine
from authz.extract import TokenExtractor
from authz.identity import Identity
from authz.metrics import AuthzMetrics
from authz.mutation import Mutator
from authz.policy import RuleBook
from authz.request import AuthRequest, Origin
from config.settings import HeaderNames
from harness.certificates import self_signed


PEM_A, DER_A = self_signed("a")
PEM_B, DER_B = self_signed("b")
X5T_A = base64.urlsafe_b64encode(hashlib.sha256(DER_A).digest()).rstrip(b"=").decode()
HASH_A, HASH_B = hashlib.sha256(DER_A).hexdigest(), hashlib.sha256(DER_B).hexdigest()


def request(xfcc: str | None = None, peer: str = "") -> AuthRequest:
    headers = {"authorization": "Bearer t"} if xfcc is None else {"authorization": "Bearer t",
                                                                   "x-forwarded-client-cert": xfcc}
    return AuthRequest(headers, source=peer, read_origin=lambda cert: Origin("https", "api", cert))


def test_thumbprint_of_plain_and_url_encoded_pem():
    assert mtls.pem_thumbprint(PEM_A) == X5T_A
    assert mtls.pem_thumbprint(quote(PEM_A, safe="")) == X5T_A  # Envoy's source.certificate and XFCC Cert
    assert mtls.pem_thumbprint("not a certificate") is None
    assert mtls.pem_thumbprint("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----") is None


def test_xfcc_element_by_hops_with_quoted_commas_and_semicolons():
    outer = f'By=spiffe://gw;Hash={HASH_A};Subject="CN=a\\, b;c,O=Acme";URI=spiffe://client'
    inner = f'By=spiffe://app;Hash={HASH_B};Subject="";URI=spiffe://gw'
    header = f'Hash=forged;Subject="CN=root",{outer},{inner}'
    assert mtls.forwarded_element(header, 1).hash == HASH_B
    second = mtls.forwarded_element(header, 2)
    assert second.hash == HASH_A and second.subject == "CN=a\\, b;c,O=Acme"
    assert mtls.forwarded_element(header, 3).hash == "forged"
    assert mtls.forwarded_element(header, 4) is None  # not through that many proxies
    assert mtls.forwarded_element(header, 0) is None  # no proxy trusted


def test_xfcc_is_read_from_the_right_whatever_the_client_wrote_on_the_left():
    proxy = f'By=spiffe://gw;Hash={HASH_B};Subject="CN=a\\"b\\,c,O=x\\\\"'  # escaped quote, comma, backslash
    for forged in (f'Hash={HASH_A};By="', f'Subject="CN=victim";Hash={HASH_A};By="x\\"', '"""', ''):
        header = f"{forged},{proxy}" if forged else proxy
        element = mtls.forwarded_element(header, 1)
        assert element.hash == HASH_B and element.subject == 'CN=a\\"b\\,c,O=x\\\\', forged
    inner = f"Hash={HASH_A}"
    assert mtls.forwarded_element(f'{proxy},{inner}', 2).hash == HASH_B
    assert mtls.forwarded_element(f'Hash=x;By=",{proxy},{inner}', 2).hash == HASH_B
    assert mtls.forwarded_element(f'Hash={HASH_A};By="', 1) is None  # not well-formed: not believed
    assert mtls.forwarded_element(f'Hash={HASH_A};By=",{inner}', 2) is None


def test_xfcc_thumbprint_from_hash_else_cert():
    assert mtls.XfccElement(hash=HASH_A).thumbprint() == X5T_A
    assert mtls.XfccElement(cert=quote(PEM_A, safe="")).thumbprint() == X5T_A
    assert mtls.XfccElement(hash="abc").thumbprint() is None
    assert mtls.XfccElement(hash="zz" * 32).thumbprint() is None
    assert mtls.XfccElement().thumbprint() is None


def test_presented_certificate_sources():
    trusting = mtls.CertificateBinding(trusted_hops=1)
    assert trusting.presented(request(f"Hash={HASH_A}", peer=quote(PEM_B))) == X5T_A  # XFCC first
    assert trusting.presented(request(None, peer=quote(PEM_A))) == X5T_A  # else the peer
    assert trusting.presented(request(None)) is None
    two = mtls.CertificateBinding(trusted_hops=2)
    assert two.presented(request(f"Hash={HASH_B}", peer=quote(PEM_A))) == X5T_A  # one element: not via both
    believing_none = mtls.CertificateBinding(trusted_hops=0)
    assert believing_none.presented(request(f"Hash={HASH_A}")) is None
    assert believing_none.presented(request(f"Hash={HASH_A}", peer=PEM_B)) != X5T_A


def test_refusals():
    binding = mtls.CertificateBinding(trusted_hops=1)
    assert binding.refusal(X5T_A, request(f"Hash={HASH_A}")) is None
    assert binding.refusal(X5T_A, request(f"Hash={HASH_B}")) is mtls.WRONG_CERTIFICATE
    assert binding.refusal(X5T_A, request()) is mtls.NO_CERTIFICATE
    assert mtls.WRONG_CERTIFICATE.status == 401 and mtls.WRONG_CERTIFICATE.error == "invalid_token"


def test_memo_is_bounded():
    binding = mtls.CertificateBinding(trusted_hops=1)
    for i in range(mtls.MEMO_SIZE + 10):
        binding.presented(request(f"Hash={i:064x}"))
    assert len(binding._memo) <= mtls.MEMO_SIZE
    padded = f'{"x" * mtls.MEMO_KEY_MAX},Hash={HASH_A}'  # a client may pad the part left of the proxy's
    assert binding.presented(request(padded)) == X5T_A and padded not in binding._memo
    assert binding.presented(request(f"Hash={HASH_A}")) == X5T_A


@pytest.fixture
def engine() -> Engine:
    return Engine(TokenExtractor(), None, TokenCache(100, 60, 5), RuleBook(),  # type: ignore[arg-type]
                  Mutator(HeaderNames()), AuthzMetrics(), trusted_proxy_hops=1)


def test_cached_bound_token_is_checked_on_every_request(engine):
    identity = Identity.from_claims({"sub": "s", "jti": "j", "client_id": "c", "cnf": {"x5t#S256": X5T_A}},
                                    time.time() + 60)
    engine.cache.put(token_key("t"), identity)  # verified once, as a cache miss would
    ok, _ = engine.check_now(request(f"Hash={HASH_A}"))
    assert ok.allowed
    denied, _ = engine.check_now(request(f"Hash={HASH_B}"))
    assert not denied.allowed and denied.reason == "certificate_mismatch"
    again, _ = engine.check_now(request(f"Hash={HASH_A}"))
    assert again.allowed
