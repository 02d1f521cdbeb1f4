"""Strict parsing of a compact JWS, before any key is chosen.

Refuses what should never reach a verifier: `alg: none`, embedded keys or key URLs
(`jwk`, `jku`, `x5u`, `x5c`), `crit` extensions, JWE (5 parts), broken base64, non-object JSON.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from authz.errors import TokenError

MAX_TOKEN_BYTES = 16 * 1024
_REFUSED_HEADERS = ("jwk", "jku", "x5u", "x5c", "crit")
# bytes.translate (str.translate costs ~30 ns a character): base64url to base64, and the standard
# alphabet's own '+', '/' and padding to '*', which strict mode refuses
_B64_TABLE = bytes.maketrans(b"-_+/=", b"+/***")
_PAD = (b"", None, b"==", b"=")  # by length % 4; 4n+1 characters are never base64
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# bits the last character of a segment of length 4n+2 / 4n+3 carries beyond the data: they must be 0
_PADDING_BITS = {2: 0x0F, 3: 0x03}


def b64url_decode(segment: str) -> bytes:
    # canonical only: a last character with padding bits set would decode to the same bytes, so two
    # strings would verify as one token while every cache and revocation list keys them apart
    tail = len(segment) % 4
    mask = _PADDING_BITS.get(tail)
    if mask is not None and _B64URL.find(segment[-1]) & mask:
        raise TokenError("token is not valid base64url", "malformed")
    try:
        # '+', '/' and '=' are no base64url: translated to a character strict mode refuses
        return binascii.a2b_base64(segment.encode("ascii").translate(_B64_TABLE) + _PAD[tail], strict_mode=True)
    except (binascii.Error, ValueError, TypeError):  # UnicodeEncodeError is a ValueError; TypeError: 4n+1
        raise TokenError("token is not valid base64url", "malformed") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested ~1,000 deep
        raise TokenError(f"token {what} is not valid JSON", "malformed") from None
    if not isinstance(value, dict):
        raise TokenError(f"token {what} is not a JSON object", "malformed")
    return value


@dataclass(frozen=True, slots=True)
class CompactJws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


@lru_cache(maxsize=256)
def _header(segment: str) -> dict[str, Any]:
    """The checked header. Every token of one key has the same header segment: parsed once
    (the dict is shared: read it, never change it)."""
    header = _json_object(b64url_decode(segment), "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg or alg.lower() == "none":
        raise TokenError("unsigned tokens (alg none) are not accepted", "bad_alg")
    for name in _REFUSED_HEADERS:
        if name in header:
            raise TokenError(f"token header {name!r} is not accepted", "bad_header")
    return header


def parse(token: str) -> CompactJws:
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("token is too large", "malformed")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenError("encrypted tokens (JWE) are not accepted", "malformed")
    if len(parts) != 3:
        raise TokenError("token is not a compact JWS", "malformed")
    header = _header(parts[0])
    claims = _json_object(b64url_decode(parts[1]), "payload")
    signature = b64url_decode(parts[2])
    if not signature:
        raise TokenError("token has no signature", "malformed")
    return CompactJws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
