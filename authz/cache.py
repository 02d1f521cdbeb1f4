"""The verification cache: bounded, keyed by a hash of the token, never outliving `exp`."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable

import cachetools

from authz.decision import Decision
from authz.identity import Identity

MAX_DECISIONS_PER_ENTRY = 32


@dataclass(slots=True, eq=False)
class Entry:
    identity: Identity | None  # None = a cached refusal (negative caching)
    expires_at: float
    refusal: Decision | None = None
    # Decisions already made for this token, by (rules, selected project): a repeat request
    # reuses the decision and its encoded response. The first one sits in two slots, a dict
    # is made only for a second (most tokens only ever meet one route's rules).
    memo_key: Any = None
    memo: Decision | None = None
    more: dict | None = None

    def decision_for(self, key: Any) -> Decision | None:
        if self.memo_key == key:
            return self.memo
        return self.more.get(key) if self.more else None

    def remember(self, key: Any, decision: Decision) -> None:
        if self.memo is None:
            self.memo_key, self.memo = key, decision
        elif self.more is None:
            self.more = {key: decision}
        elif len(self.more) < MAX_DECISIONS_PER_ENTRY:
            self.more[key] = decision


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenCache:
    def __init__(self, max_entries: int, ttl_seconds: float, negative_ttl_seconds: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._clock = clock
        self._entries: cachetools.TLRUCache = cachetools.TLRUCache(
            maxsize=max_entries, ttu=lambda _k, entry, _now: entry.expires_at, timer=clock)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Entry | None:
        entry = self._entries.get(key)
        # exp is checked on every hit, not only when the cache sweeps
        if entry is not None and entry.expires_at <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry

    def put(self, key: bytes, identity: Identity) -> Entry:
        now = self._clock()
        entry = Entry(identity, min(now + self._ttl, identity.expires_at))
        if entry.expires_at > now:
            self._entries[key] = entry
        return entry

    def put_refusal(self, key: bytes, refusal: Decision) -> None:
        if self._negative_ttl > 0:
            self._entries[key] = Entry(None, self._clock() + self._negative_ttl, refusal)

    def evict(self, *, jti: str | None = None, subject: str | None = None, client_id: str | None = None) -> int:
        """Drop every entry whose token matches; called by the token service on revocation."""
        doomed = [key for key, entry in list(self._entries.items())
                  if entry.identity is not None and (
                      (jti is not None and entry.identity.jti == jti)
                      or (subject is not None and entry.identity.subject == subject)
                      or (client_id is not None and entry.identity.client_id == client_id))]
        for key in doomed:
            self._entries.pop(key, None)
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
