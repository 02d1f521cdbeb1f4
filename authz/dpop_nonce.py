"""Server-provided DPoP nonces (RFC 9449 §8, §9) with no shared state: a nonce is a time slot
and its HMAC under a secret every replica and worker shares (`dpop.nonce_secret`), so any of
them accepts a nonce another one gave. A nonce is accepted in its own slot and the next one:
it lives between one and two `slot_seconds`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Callable


class Nonces:
    def __init__(self, secret: bytes, slot_seconds: int = 60, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the DPoP nonce secret must be at least 16 bytes")
        self._secret = secret
        self._slot_seconds = slot_seconds
        self._clock = clock
        self._current: tuple[int, str] = (-1, "")

    def _slot(self) -> int:
        return int(self._clock() // self._slot_seconds)

    def _mac(self, slot: int) -> str:
        digest = hmac.new(self._secret, b"dpop-nonce:%d" % slot, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def current(self) -> str:
        """The nonce to hand out now (one per slot)."""
        slot = self._slot()
        if self._current[0] != slot:
            self._current = (slot, f"{slot:x}.{self._mac(slot)}")
        return self._current[1]

    def valid(self, nonce: Any) -> bool:
        if type(nonce) is not str or len(nonce) > 64:
            return False
        text, _, mac = nonce.partition(".")
        if not text or len(text) > 12 or any(c not in "0123456789abcdef" for c in text):
            return False
        slot = int(text, 16)
        if not 0 <= self._slot() - slot <= 1:
            return False
        return hmac.compare_digest(mac, self._mac(slot))
