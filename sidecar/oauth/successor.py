"""A rotated refresh token's successor, sealed under the token it replaces.

The store keeps a successor for the rotation grace period so that the same old token,
presented again (a lost answer, a client retry), gets the same successor back. The store
never holds a usable token: the successor is encrypted (AES-GCM) with a key derived from the
old token's secret, which only the holder of the old token has (the store keeps its digest).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_LABEL = b"auth-sidecar refresh successor v1"


def _key(old_secret: str) -> AESGCM:
    return AESGCM(hmac.new(old_secret.encode(), _LABEL, hashlib.sha256).digest())


def seal(old_secret: str, family: str, successor: str) -> str:
    nonce = os.urandom(12)
    sealed = _key(old_secret).encrypt(nonce, successor.encode(), family.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(old_secret: str, family: str, sealed: str) -> str | None:
    """The successor, or None when `sealed` was not made under this secret and family."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return _key(old_secret).decrypt(raw[:12], raw[12:], family.encode()).decode()
    except (InvalidTag, ValueError):
        return None
