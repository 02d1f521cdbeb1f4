"""DPoP proofs (RFC 9449): the `DPoP` header's JWT checked against one request, every check of
§4.3. Pure (no I/O): the resource side (ext_authz, `authz/dpop_binding.py`) and the token
endpoint (`sidecar/oauth/dpop.py`) both call `ProofChecker.check`; what a proof's `jti` was
already used for is the caller's replay store's business (`authz/dpop_replay.py`).

A proof's header (`typ`, `alg`, `jwk`) is the same on every request of one client key: its
checked form (the parsed public key pinned to the header's `alg`, and the key's RFC 7638
thumbprint) is kept per header segment, bounded, so a request costs one JSON parse of the
payload and one signature check. The payload is parsed with orjson (~1 µs against json's ~6):
the same objects for every RFC 8259 text, and it refuses what is not one, which `json` lets
through: `NaN` (an `iat` that passes every comparison), lone surrogates (a `jti` that cannot
be encoded)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from authz import jose
from authz.errors import TokenError
from authz.keys import VerificationKey

# the algorithms a proof may use: asymmetric only, never `none` or HS* (RFC 9449 §4.3, check 5)
SUPPORTED_ALGS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA")
MAX_PROOF_BYTES = 8 * 1024  # an RSA-4096 proof is ~1.6 kB
MAX_JTI_CHARS = 256
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
_EC_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_DEFAULT_PORT = {"http": ":80", "https": ":443"}


class ProofError(Exception):
    """The proof is refused: `error` is `invalid_dpop_proof` or `use_dpop_nonce` (RFC 9449 §7.1,
    §8). The description is fixed text: nothing from the request is echoed back."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof") -> None:
        super().__init__(description)
        self.description = description
        self.error = error


class Proof(NamedTuple):
    """A checked proof: its key's thumbprint, its id and until when it must not be seen again
    (a tuple: built on every Check, a third of a frozen dataclass's cost)."""

    jkt: str
    jti: str
    replay_until: float  # past this, its iat is outside the window: a replay is refused as stale

    @property
    def replay_key(self) -> str:
        """One short key per (key, jti): a replay store's key (a jti is chosen by the client,
        so it is scoped to the key that signed it)."""
        return hashlib.sha256(f"{self.jkt}.{self.jti}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _ProofKey:
    alg: str
    jkt: str
    verify: Callable[[bytes, bytes], bool]


def b64url_sha256(text: str) -> str:
    """base64url (no padding) of SHA-256: `ath` of an access token, a JWK thumbprint."""
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, no whitespace."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ProofError("DPoP proof jwk has an unsupported key type")
    values = {name: jwk.get(name) for name in members}
    if not all(type(value) is str and value for value in values.values()):
        raise ProofError("DPoP proof jwk is missing a required member")
    return b64url_sha256(json.dumps(values, separators=(",", ":"), sort_keys=True))


def normalize_url(url: str) -> str | None:
    """An `htu` as RFC 3986 §6.2.2-§6.2.3 compares it: scheme and host lower-cased, the default
    port dropped, an empty path as `/`, the query and fragment left out (RFC 9449 §4.3, check
    9); None when it is no absolute http(s) URL."""
    if type(url) is not str or len(url) > 4096:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORT or not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    authority = host if port is None else f"{host}:{port}"
    if authority.endswith(_DEFAULT_PORT[scheme]):
        authority = authority[: -len(_DEFAULT_PORT[scheme])]
    return f"{scheme}://{authority}{_normalize_path(parts.path) or '/'}"


def _normalize_path(path: str) -> str:
    """Percent-encodings upper-cased, unreserved characters decoded (RFC 3986 §6.2.2.1-2)."""
    if "%" not in path:
        return path
    out, i = [], 0
    while i < len(path):
        c = path[i]
        if c == "%" and _is_hex(path[i + 1:i + 3]):
            char = chr(int(path[i + 1:i + 3], 16))
            out.append(char if char.isalnum() and char.isascii() or char in "-._~" else "%" + path[i + 1:i + 3].upper())
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _other_url(htu: str | None, url: str, also: str | None) -> bool:
    return htu is None or (htu != url and htu != also)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def _public_key(jwk: dict[str, Any], alg: str) -> Any:
    """The jwk's public key, fit for `alg` (EC curve, RSA size), or ProofError."""
    kty = jwk.get("kty")
    try:
        if kty == "EC" and alg in _EC_CURVE and jwk.get("crv") == _EC_CURVE[alg]:
            key = ECAlgorithm.from_jwk(jwk)
            ok = isinstance(key, ec.EllipticCurvePublicKey)
        elif kty == "RSA" and alg[:2] in ("RS", "PS"):
            key = RSAAlgorithm.from_jwk(jwk)
            ok = isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
        elif kty == "OKP" and alg == "EdDSA":
            key = OKPAlgorithm.from_jwk(jwk)
            ok = isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
        else:
            raise ProofError("DPoP proof jwk does not fit its alg")
    except ProofError:
        raise
    except Exception:  # PyJWT's InvalidKeyError, a point off the curve, bad base64 ...
        raise ProofError("DPoP proof jwk is not a valid public key") from None
    if not ok:
        raise ProofError("DPoP proof jwk does not fit its alg")
    return key


class ProofChecker:
    """Checks proofs for one configuration. `algs`: those accepted (a subset of SUPPORTED_ALGS);
    `max_age`: how old an `iat` may be; `skew`: how far ahead of our clock; `nonces`: when set,
    a proof must carry a `nonce` it accepts (`authz/dpop_nonce.py`)."""

    def __init__(self, algs: tuple[str, ...] = SUPPORTED_ALGS, max_age: float = 60.0, skew: float = 5.0,
                 nonces: Any = None, max_keys: int = 4096, clock: Callable[[], float] = time.time) -> None:
        unknown = set(algs) - set(SUPPORTED_ALGS)
        if unknown or not algs:
            raise ValueError(f"DPoP algorithms not supported: {' '.join(sorted(unknown)) or '(none)'}")
        self.algs = tuple(algs)
        self.algs_text = " ".join(self.algs)  # the `algs` of a DPoP challenge (RFC 9449 §7.1)
        self.max_age = max_age
        self.skew = skew
        self.nonces = nonces
        self._max_keys = max_keys
        self._keys: dict[str, _ProofKey] = {}
        self._ath: dict[str, str] = {}  # access token → its `ath`: a token comes with many proofs
        self._clock = clock

    def check(self, value: str | None, method: str, url: str | None, access_token: str | None = None,
              jkt: str | None = None, also: str | None = None) -> Proof:
        """The proof in the `DPoP` header `value`, checked for a request of `method` to `url`
        (as `normalize_url` gives it: the caller normalises once; None when the request's own
        URL is unusable), presenting `access_token` (then `ath` is required), bound to `jkt`
        (then the proof's key must be that one). `also`: another normalised URL the request is
        known by (the token endpoint's public one). Checks cheapest first, the signature last."""
        if not value:
            raise ProofError("a DPoP proof is required")
        if url is None:
            raise ProofError("the request URL cannot be checked against a DPoP proof")
        if len(value) > MAX_PROOF_BYTES:
            raise ProofError("DPoP proof is too large")
        if "," in value:  # two header values folded into one (RFC 9449 §4.3, check 1)
            raise ProofError("exactly one DPoP header is allowed")
        parts = value.split(".")
        if len(parts) != 3:
            raise ProofError("DPoP proof is not a compact JWS")
        header, payload, signature = parts
        key = self._keys.get(header) or self._key(header)
        if jkt is not None and key.jkt != jkt:
            raise ProofError("DPoP proof key does not match the key the token is bound to")
        try:
            claims = orjson.loads(jose.b64url_decode(payload))
            raw_signature = jose.b64url_decode(signature)
        except (TokenError, orjson.JSONDecodeError):
            raise ProofError("DPoP proof is not a valid JWT") from None
        if type(claims) is not dict:
            raise ProofError("DPoP proof is not a valid JWT")
        until = self._claims(claims, method, url, also, access_token, self._clock())
        try:
            valid = key.verify(f"{header}.{payload}".encode("ascii"), raw_signature)
        except Exception:  # a library's own error on a malformed signature
            valid = False
        if not valid:
            raise ProofError("DPoP proof signature is invalid")
        return Proof(key.jkt, claims["jti"], until)

    def _key(self, segment: str) -> _ProofKey:
        """A header segment seen for the first time: parsed, checked and kept (bounded: the
        oldest goes first)."""
        key = self._parse_header(segment)
        if len(self._keys) >= self._max_keys:
            del self._keys[next(iter(self._keys))]
        self._keys[segment] = key
        return key

    def _parse_header(self, segment: str) -> _ProofKey:
        try:
            header = jose._json_object(jose.b64url_decode(segment), "header")
        except TokenError:
            raise ProofError("DPoP proof is not a valid JWT") from None
        if header.get("typ") != "dpop+jwt":
            raise ProofError("DPoP proof typ must be dpop+jwt")
        alg = header.get("alg")
        if alg not in self.algs:
            raise ProofError("DPoP proof alg is not accepted")
        if "crit" in header:
            raise ProofError("DPoP proof header crit is not accepted")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise ProofError("DPoP proof header needs a jwk")
        if any(name in jwk for name in _PRIVATE_MEMBERS):
            raise ProofError("DPoP proof jwk must be a public key")
        public = _public_key(jwk, alg)
        jkt = jwk_thumbprint(jwk)
        return _ProofKey(alg, jkt, VerificationKey(kid=jkt, alg=alg, key=public).verify)

    def _token_hash(self, access_token: str) -> str:
        ath = self._ath.get(access_token)
        if ath is None:
            if len(self._ath) >= 1024:  # bounded (a token is ~1 kB): start again
                self._ath.clear()
            ath = self._ath[access_token] = b64url_sha256(access_token)
        return ath

    def _claims(self, claims: dict[str, Any], method: str, url: str, also: str | None, access_token: str | None,
                now: float) -> float:
        """The payload's checks (RFC 9449 §4.3, checks 8-12); until when its jti must be kept."""
        jti = claims.get("jti")
        if type(jti) is not str or not 0 < len(jti) <= MAX_JTI_CHARS:
            raise ProofError("DPoP proof needs a jti")
        if claims.get("htm") != method:
            raise ProofError("DPoP proof htm does not match the request method")
        htu = claims.get("htu")
        # the common case first: the client wrote the URL as it is normalised
        if htu != url and (type(htu) is not str or _other_url(normalize_url(htu), url, also)):
            raise ProofError("DPoP proof htu does not match the request URL")
        iat = claims.get("iat")
        if type(iat) not in (int, float) or iat != iat:  # NaN (Python's JSON reads it) passes every comparison
            raise ProofError("DPoP proof needs a numeric iat")
        if iat > now + self.skew:
            raise ProofError("DPoP proof iat is in the future")
        if iat < now - self.max_age:
            raise ProofError("DPoP proof is too old")
        if access_token is not None and claims.get("ath") != self._token_hash(access_token):
            raise ProofError("DPoP proof ath does not match the access token")
        if self.nonces is not None and not self.nonces.valid(claims.get("nonce")):
            raise ProofError("a fresh DPoP nonce is required", "use_dpop_nonce")
        return iat + self.max_age + 1
