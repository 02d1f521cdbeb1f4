"""Signing and verification keys. Every key is pinned to one algorithm (never the token's word)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

ALGORITHMS = get_default_algorithms()
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


_EC_CURVES = {"ES256": ("secp256r1", hashes.SHA256), "ES384": ("secp384r1", hashes.SHA384),
              "ES512": ("secp521r1", hashes.SHA512)}


def _ec_check(alg: str, key: Any) -> Callable[[bytes, bytes], bool]:
    """An ES* check straight on `cryptography`: PyJWT's algorithm object builds a hash object
    and converts the signature in Python on every check (~8 µs of a ~150 µs cache miss,
    in-process). A key on another curve than its algorithm's never verifies."""
    curve, hash_alg = _EC_CURVES[alg]
    if key.curve.name != curve:
        return lambda signing_input, signature: False
    size = (key.curve.key_size + 7) // 8
    scheme = ec.ECDSA(hash_alg())

    def check(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * size:
            return False
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        try:
            key.verify(encode_dss_signature(r, s), signing_input, scheme)
        except InvalidSignature:
            return False
        return True
    return check


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key with the one algorithm it may verify."""

    kid: str
    alg: str
    key: Any  # a cryptography public key object
    verify: Callable[[bytes, bytes], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg in _EC_CURVES and isinstance(self.key, ec.EllipticCurvePublicKey):
            check = _ec_check(self.alg, self.key)
        else:
            algorithm, key = ALGORITHMS[self.alg], self.key
            check = lambda signing_input, signature: algorithm.verify(signing_input, key, signature)  # noqa: E731
        object.__setattr__(self, "verify", check)  # (signing_input, signature) → valid


def alg_for_key(public_key: Any) -> str:
    """The algorithm a key is pinned to when nothing else says so."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[public_key.curve.name]
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError(f"unsupported key type {type(public_key).__name__}")


def public_jwk(kid: str, alg: str, public_key: Any) -> dict[str, Any]:
    """The JWK published in jwks.json."""
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = json.loads(ECAlgorithm.to_jwk(public_key))
    else:
        jwk = json.loads(OKPAlgorithm.to_jwk(public_key))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def key_from_jwk(jwk: dict[str, Any]) -> VerificationKey:
    """A JWKS entry to a pinned key; alg from the JWK itself or its key type, never the token."""
    kty = jwk.get("kty")
    if kty == "RSA":
        key = RSAAlgorithm.from_jwk(jwk)
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(jwk)
    elif kty == "OKP":
        key = OKPAlgorithm.from_jwk(jwk)
    else:
        raise ValueError(f"unsupported kty {kty!r}")
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        key = key.public_key()  # a JWK carrying private parts: keep only the public half
    alg = jwk.get("alg") or alg_for_key(key)
    if alg not in ASYMMETRIC:
        raise ValueError(f"algorithm {alg!r} is not allowed")
    if alg.startswith("PS") and not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("PS algorithms need an RSA key")
    return VerificationKey(kid=str(jwk.get("kid", "")), alg=alg, key=key)


def key_from_pem(kid: str, alg: str, pem: str | bytes) -> VerificationKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    if alg not in ASYMMETRIC:
        raise ValueError(f"algorithm {alg!r} is not allowed")
    return VerificationKey(kid=kid, alg=alg, key=key)


def thumbprint_kid(public_key: Any) -> str:
    """RFC 7638-style thumbprint, used as the kid of keys we generate."""
    jwk = public_jwk("", alg_for_key(public_key), public_key)
    members = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "e", "kty", "n", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:16]


def generate_private_key(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"cannot generate keys for {alg!r}")


def private_pem(private_key: Any) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def public_pem(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private_key: Any
    created: float

    @property
    def verification(self) -> VerificationKey:
        return VerificationKey(self.kid, self.alg, self.private_key.public_key())

    @property
    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.kid, self.alg, self.private_key.public_key())

    def sign(self, payload: dict[str, Any], headers: dict[str, Any]) -> str:
        import jwt  # local: only the token service signs

        return jwt.encode(payload, self.private_key, algorithm=self.alg, headers={"kid": self.kid, **headers})


class KeyRing:
    """Our own keys: the newest signs, all verify and are published."""

    def __init__(self, keys: list[SigningKey], ephemeral: bool = False) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = sorted(keys, key=lambda k: k.created)
        self.ephemeral = ephemeral
        self.by_kid = {k.kid: k.verification for k in self.keys}

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in reversed(self.keys)]}

    @classmethod
    def ephemeral_key(cls, alg: str) -> "KeyRing":
        private = generate_private_key(alg)
        return cls([SigningKey(thumbprint_kid(private.public_key()), alg, private, 0.0)], ephemeral=True)

    @classmethod
    def from_pem(cls, pem: bytes) -> "KeyRing":
        """One key from PEM text (hands an ephemeral key from the parent to its workers)."""
        private = serialization.load_pem_private_key(pem, password=None)
        alg = alg_for_key(private.public_key())
        return cls([SigningKey(thumbprint_kid(private.public_key()), alg, private, 0.0)], ephemeral=True)

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> "KeyRing":
        """Every *.pem private key in the folder; the file's mtime orders them (newest signs)."""
        keys = []
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"keys_dir {folder} is not a directory")
        for file in sorted(folder.glob("*.pem")):
            try:
                private = serialization.load_pem_private_key(file.read_bytes(), password=None)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"keys_dir: {file.name} is not an unencrypted PEM private key ({exc})") from None
            public = private.public_key()
            keys.append(SigningKey(thumbprint_kid(public), alg_for_key(public), private, file.stat().st_mtime))
        if not keys:
            raise ValueError(f"keys_dir {folder} holds no *.pem private key")
        return cls(keys)


def write_new_key(folder: str | os.PathLike[str], alg: str = "ES256") -> Path:
    """Write a new private key (mode 0600) that will sign from the next start on."""
    import time

    private = generate_private_key(alg)
    kid = thumbprint_kid(private.public_key())
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    file = target / f"{time.strftime('%Y%m%dT%H%M%S')}-{kid}.pem"
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem(private))
    return file
