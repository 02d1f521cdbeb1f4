"""Signing and verification keys. Every key is pinned to one algorithm (never the token's word)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

from authz import key_schedule

ALGORITHMS = get_default_algorithms()
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


_EC_CURVES = {"ES256": ("secp256r1", hashes.SHA256), "ES384": ("secp384r1", hashes.SHA384),
              "ES512": ("secp521r1", hashes.SHA512)}
_DIGESTS = {"ES256": hashlib.sha256, "ES384": hashlib.sha384, "ES512": hashlib.sha512}


_BYTE = [bytes((n,)) for n in range(256)]


def _der_integer(raw: bytes) -> bytes:
    """An unsigned big-endian integer as DER: no leading zero bytes, one 0 before a high bit."""
    raw = raw.lstrip(b"\0")
    if not raw or raw[0] > 127:
        raw = b"\0" + raw
    return b"\x02" + _BYTE[len(raw)] + raw


def raw_to_der(signature: bytes, size: int) -> bytes:
    """A JWS ECDSA signature (r || s, `size` bytes each) as the DER `cryptography` verifies:
    byte for byte what `encode_dss_signature` gives, built without two Python ints (~1 µs less
    per check; tests/authz/test_dpop_fast_path.py compares the two)."""
    body = _der_integer(signature[:size]) + _der_integer(signature[size:])
    n = len(body)  # P-521: up to 138 bytes, DER's long form
    return (b"\x30" + _BYTE[n] if n < 128 else b"\x30\x81" + _BYTE[n]) + body


def _ec_check(alg: str, key: Any) -> Callable[[bytes, bytes], bool]:
    """An ES* check straight on `cryptography`: PyJWT's algorithm object builds a hash object
    and converts the signature in Python on every check (~8 µs of a ~150 µs cache miss,
    in-process). A key on another curve than its algorithm's never verifies."""
    curve, hash_alg = _EC_CURVES[alg]
    if key.curve.name != curve:
        return lambda signing_input, signature: False
    size = (key.curve.key_size + 7) // 8
    # the digest from hashlib, the signature checked over it: the same check, ~3-5 % less CPU per
    # DPoP Check than `cryptography` hashing inside the call (in-process A/B, three runs)
    digest, scheme = _DIGESTS[alg], ec.ECDSA(Prehashed(hash_alg()))
    verify = key.verify

    def check(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * size:
            return False
        try:
            verify(raw_to_der(signature, size), digest(signing_input).digest(), scheme)
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
    activation: float | None = None  # when it starts signing (epoch seconds); None: from the start
    name: str = ""  # its file name, which orders keys that activate together

    @property
    def verification(self) -> VerificationKey:
        return VerificationKey(self.kid, self.alg, self.private_key.public_key())

    @property
    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.kid, self.alg, self.private_key.public_key())

    def sign(self, payload: dict[str, Any], headers: dict[str, Any]) -> str:
        import jwt  # local: only the token service signs

        return jwt.encode(payload, self.private_key, algorithm=self.alg, headers={"kid": self.kid, **headers})


@dataclass(frozen=True, slots=True)
class KeyState:
    kid: str
    alg: str
    state: str  # published | active | retired | gone (authz/key_schedule.py)
    activates_at: float | None
    retires_at: float | None
    name: str


class KeyRing:
    """Our own keys and their life cycle (authz/key_schedule.py): the active key signs; every
    key that is not gone verifies and is published. The keys change when the folder does
    (`replace`, from sidecar/key_watch.py) and the states with the clock (`tick`, and a
    check on `current`, so that the signing key switches on time without a timer)."""

    def __init__(self, keys: list[SigningKey], ephemeral: bool = False, *, retention: float = math.inf,
                 folder: str | os.PathLike[str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.ephemeral = ephemeral
        self.folder = Path(folder) if folder is not None else None
        self.retention = retention
        self._clock = clock
        self.on_change: Callable[[list[str]], None] = lambda events: None
        self.keys: list[SigningKey] = []
        self.by_kid: dict[str, VerificationKey] = {}
        self.states: list[KeyState] = []
        self.replace(keys)

    def replace(self, keys: list[SigningKey]) -> None:
        """A new set of keys (the folder changed); the states follow at once."""
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._all = sorted(keys, key=lambda k: key_schedule.order(k.activation, k.name))
        self._advance(self._clock())

    def _advance(self, now: float) -> None:
        plan = key_schedule.plan([k.activation for k in self._all], now, self.retention)
        before = {s.kid: s.state for s in self.states}
        self.states = [KeyState(k.kid, k.alg, state, k.activation, end, k.name)
                       for k, state, end in zip(self._all, plan.states, plan.retires_at)]
        live = [k for k, state in zip(self._all, plan.states) if state != key_schedule.GONE]
        old = self.by_kid
        # the Check path reads by_kid: one reference swapped, never a dict changed in place
        self.by_kid = {k.kid: old.get(k.kid) or k.verification for k in live}
        self.keys = live
        self._jwks = {"keys": [k.jwk for k in reversed(live)]}
        self._active = self._all[plan.active]
        self.early = plan.early
        self._next_change = plan.next_change
        events = [f"{s.state} {s.kid}" for s in self.states if before.get(s.kid) != s.state]
        if events and before:
            self.on_change(events)

    def tick(self) -> None:
        """Bring the states up to the clock (a key activates, or a retired one is gone)."""
        if self._clock() >= self._next_change:
            self._advance(self._clock())

    @property
    def next_change(self) -> float:
        return self._next_change

    @property
    def current(self) -> SigningKey:
        """The key that signs now: one clock read per token signed."""
        if self._clock() >= self._next_change:
            self._advance(self._clock())
        return self._active

    async def key_for(self, kid: str | None) -> VerificationKey | None:
        """The own-issuer key source of the Check path (authz/verify.py), as cheap as a dict."""
        if kid is None:
            return next(iter(self.by_kid.values())) if len(self.by_kid) == 1 else None
        return self.by_kid.get(kid)

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def rescan(self) -> bool:
        """Read the folder again; True when the keys changed. Raises ValueError on a bad folder."""
        if self.folder is None:
            return False
        keys = keys_from_files(read_key_files(self.folder), self.folder)
        if [(k.kid, k.activation, k.name) for k in keys] == [(k.kid, k.activation, k.name) for k in self._all]:
            return False
        self.replace(keys)
        return True

    @classmethod
    def ephemeral_key(cls, alg: str) -> "KeyRing":
        private = generate_private_key(alg)
        return cls([SigningKey(thumbprint_kid(private.public_key()), alg, private)], ephemeral=True)

    @classmethod
    def from_pem(cls, pem: bytes) -> "KeyRing":
        """One key from PEM text (hands an ephemeral key from the parent to its workers)."""
        private = serialization.load_pem_private_key(pem, password=None)
        alg = alg_for_key(private.public_key())
        return cls([SigningKey(thumbprint_kid(private.public_key()), alg, private)], ephemeral=True)

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str], retention: float = math.inf,
                 clock: Callable[[], float] = time.time) -> "KeyRing":
        """Every *.pem private key in the folder, on the schedule their names carry."""
        keys = keys_from_files(read_key_files(path), Path(path))
        return cls(keys, retention=retention, folder=path, clock=clock)


def read_key_files(path: str | os.PathLike[str]) -> list[tuple[str, bytes]]:
    """(name, content) of every *.pem in the folder, by name. Symbolic links are followed (a
    mounted Kubernetes Secret); hidden entries (its `..data`) and half-written files are not."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"keys_dir {folder} is not a directory")
    files = []
    for file in sorted(folder.glob("*.pem")):
        try:
            files.append((file.name, file.read_bytes()))
        except FileNotFoundError:  # removed between listing and reading: it is gone
            continue
    return files


def keys_from_files(files: list[tuple[str, bytes]], folder: Path) -> list[SigningKey]:
    keys = []
    for name, data in files:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"keys_dir: {name} is not an unencrypted PEM private key ({exc})") from None
        public = private.public_key()
        keys.append(SigningKey(thumbprint_kid(public), alg_for_key(public), private,
                               key_schedule.activation_from_name(name), name))
    if not keys:
        raise ValueError(f"keys_dir {folder} holds no *.pem private key")
    return keys


def write_new_key(folder: str | os.PathLike[str], alg: str = "ES256", activation: float | None = None) -> Path:
    """Write a new private key (mode 0600) that signs from `activation` (default: now). The
    file appears whole (written aside, then renamed): a watcher never reads half a key."""
    private = generate_private_key(alg)
    kid = thumbprint_kid(private.public_key())
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    file = target / key_schedule.name_for(math.floor(time.time()) if activation is None else activation, kid)
    scratch = target / f".{file.name}.tmp"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem(private))
        os.link(scratch, file)  # fails if the name exists: never overwrites a key
    finally:
        os.unlink(scratch)
    return file


@dataclass(frozen=True, slots=True)
class Rotation:
    file: Path
    kid: str
    activates_at: float
    pruned: tuple[str, ...]


class RotationPending(Exception):
    """A rotation is already scheduled: its key has not activated yet."""


def rotate(folder: str | os.PathLike[str], alg: str, publish_ahead: float, retention: float,
           force: bool = False, clock: Callable[[], float] = time.time) -> Rotation:
    """Schedule a new key publish_ahead from now (at once in a folder with no key signing
    yet), and delete the files of keys that are gone."""
    now = clock()
    folder = Path(folder)
    try:
        ring: KeyRing | None = KeyRing.from_dir(folder, retention, clock)
    except ValueError:
        if folder.exists() and any(folder.glob("*.pem")):
            raise
        ring = None  # an empty or new folder: the first key signs at once
    pruned = []
    activation = float(math.floor(now))
    if ring is not None:
        pending = [s for s in ring.states if s.state == key_schedule.PUBLISHED]
        if pending and not force:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pending[-1].activates_at or now))
            raise RotationPending(f"key {pending[-1].kid} is already scheduled to sign from {when}")
        if not ring.early:
            activation = now + publish_ahead
        for state in ring.states:
            if state.state == key_schedule.GONE:
                (folder / state.name).unlink(missing_ok=True)
                pruned.append(state.kid)
    file = write_new_key(folder, alg, activation)
    kid = file.name[len("YYYYmmddTHHMMSSZ-"):-len(".pem")]
    return Rotation(file, kid, float(math.ceil(activation)), tuple(pruned))
