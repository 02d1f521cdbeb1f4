"""Crafting good and bad tokens for tests."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt

from authz.keys import KeyRing

ISSUER = "http://127.0.0.1:8080"


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "user-1", "aud": ISSUER, "exp": now + 600, "iat": now, "jti": "j-1",
            "client_id": "app", "scope": "read write", "tenant": "acme", "org_id": "org-1",
            "project_ids": ["p1", "p2"]}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(ring: KeyRing, payload: dict[str, Any] | None = None, **headers: Any) -> str:
    key = ring.current
    hdr = {"kid": key.kid, "typ": "at+jwt", **headers}
    return jwt.encode(payload if payload is not None else claims(), key.private_key, algorithm=key.alg, headers=hdr)


def raw(header: dict[str, Any] | str, payload: Any, signature: bytes = b"sig") -> str:
    h = header if isinstance(header, str) else b64(json.dumps(header))
    return f"{h}.{b64(json.dumps(payload))}.{b64(signature)}"
