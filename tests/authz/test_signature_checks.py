"""Each key checks signatures of its one algorithm: ES* straight on `cryptography`, the rest
through PyJWT's algorithm objects."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from authz import jose
from authz.keys import KeyRing, SigningKey, VerificationKey, thumbprint_kid


def _signed(key: SigningKey) -> jose.CompactJws:
    return jose.parse(key.sign({"sub": "alice"}, {}))


@pytest.mark.parametrize("alg, curve", [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()),
                                        ("ES512", ec.SECP521R1())])
def test_ec_keys_verify_their_signatures_and_refuse_a_changed_one(alg, curve):
    private = ec.generate_private_key(curve)
    jws = _signed(SigningKey(thumbprint_kid(private.public_key()), alg, private, 0.0))
    key = VerificationKey("k", alg, private.public_key())
    assert key.verify(jws.signing_input, jws.signature)
    assert not key.verify(jws.signing_input + b"x", jws.signature)
    flipped = bytes([jws.signature[0] ^ 1]) + jws.signature[1:]
    assert not key.verify(jws.signing_input, flipped)
    assert not key.verify(jws.signing_input, jws.signature + b"\0")  # the wrong length never reaches OpenSSL


def test_a_key_on_another_curve_than_its_algorithm_never_verifies():
    """A P-384 key labelled ES256 refuses even a signature made with SHA-256 on that curve."""
    private = ec.generate_private_key(ec.SECP384R1())
    r, s = decode_dss_signature(private.sign(b"a.b", ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    assert not VerificationKey("k", "ES256", private.public_key()).verify(b"a.b", signature)


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_other_algorithms_verify_through_pyjwt(alg):
    ring = KeyRing.ephemeral_key(alg)
    jws = _signed(ring.current)
    key = ring.current.verification
    assert key.verify(jws.signing_input, jws.signature)
    assert not key.verify(jws.signing_input, jws.signature[:-1] + bytes([jws.signature[-1] ^ 1]))


def test_a_signature_with_padding_bits_set_is_not_the_same_token():
    """A last base64url character that differs only in its unused bits decodes to the same signature:
    accepted, it would be a second string for one token (a new cache entry, a miss on revocation lists)."""
    private = ec.generate_private_key(ec.SECP256R1())
    token = SigningKey(thumbprint_kid(private.public_key()), "ES256", private, 0.0).sign({"sub": "alice"}, {})
    head, _, signature = token.rpartition(".")
    assert len(signature) % 4 == 2  # 64 bytes: the last character carries 4 unused bits
    twin = f"{head}.{signature[:-1]}{jose._B64URL[jose._B64URL.index(signature[-1]) | 1]}"
    jose.parse(token)
    with pytest.raises(jose.TokenError, match="base64url"):
        jose.parse(twin)
