"""The verification cache: bounded, keyed by a hash of the token, never outliving `exp`.

Not cachetools: its TLRU cache keeps three structures per key (the mapping, an ordered
dict and a heap item), ~200 bytes a token, and the cache is most of a worker's memory
(bench row `rss_100k`). Here one dict holds the entries and a deque of keys is the clock
hand: the oldest entry goes first unless it was hit since the hand last passed it (second
chance, which keeps hot tokens like LRU does), and expired ones at the hand are swept on
every insert.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from authz.decision import Decision
from authz.identity import Identity

MAX_DECISIONS_PER_ENTRY = 32
_SWEEP_PER_INSERT = 2


@dataclass(slots=True, eq=False)
class Entry:
    identity: Identity | None  # None = a cached refusal (negative caching), kept in `memo`
    expires_at: float
    # Decisions already made for this token, by (rules, selected project): a repeat request
    # reuses the decision and its encoded response. The first one sits in slots, a dict is
    # made only for a second (most tokens only ever meet one route's rules).
    memo_rules: Any = None
    memo_project: str | None = None
    memo: Decision | None = None
    more: dict | None = None
    used: bool = False  # hit since the clock hand last passed

    def decision_for(self, rules: Any, project: str | None) -> Decision | None:
        if self.memo_rules is rules and self.memo_project == project:
            return self.memo
        return self.more.get((rules, project)) if self.more else None

    def remember(self, rules: Any, project: str | None, decision: Decision) -> None:
        if self.memo is None:
            self.memo_rules, self.memo_project, self.memo = rules, project, decision
        elif self.more is None:
            self.more = {(rules, project): decision}
        elif len(self.more) < MAX_DECISIONS_PER_ENTRY:
            self.more[(rules, project)] = decision


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenCache:
    def __init__(self, max_entries: int, ttl_seconds: float, negative_ttl_seconds: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._clock = clock
        self._entries: dict[bytes, Entry] = {}
        self._hand: deque[bytes] = deque()  # keys, oldest first; may name evicted keys

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        # exp is checked on every hit, not only when the hand sweeps
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        entry.used = True
        return entry

    def put(self, key: bytes, identity: Identity) -> Entry:
        now = self._clock()
        entry = Entry(identity, min(now + self._ttl, identity.expires_at))
        if entry.expires_at > now:
            self._insert(key, entry, now)
        return entry

    def put_refusal(self, key: bytes, refusal: Decision) -> None:
        if self._negative_ttl > 0:
            now = self._clock()
            self._insert(key, Entry(None, now + self._negative_ttl, memo=refusal), now)

    def _insert(self, key: bytes, entry: Entry, now: float) -> None:
        entries, hand = self._entries, self._hand
        if key not in entries:
            hand.append(key)
        entries[key] = entry
        for _ in range(_SWEEP_PER_INSERT):  # expired or forgotten keys at the hand go now
            head = entries.get(hand[0])
            if head is not None:
                if head.expires_at > now:
                    break
                del entries[hand[0]]
            hand.popleft()
            if not hand:
                break
        while len(entries) > self._max:
            self._evict_one(now)
        if len(hand) > 2 * len(entries) + 64:  # keys of evicted entries piled up: rebuild
            self._hand = deque(entries)

    def _evict_one(self, now: float) -> None:
        entries, hand = self._entries, self._hand
        while True:
            key = hand.popleft()
            entry = entries.get(key)
            if entry is None:
                continue
            if entry.used and entry.expires_at > now:
                entry.used = False
                hand.append(key)
                continue
            del entries[key]
            return

    def evict(self, *, jti: str | None = None, subject: str | None = None, client_id: str | None = None) -> int:
        """Drop every entry whose token matches; called by the token service on revocation."""
        doomed = [key for key, entry in self._entries.items()
                  if entry.identity is not None and (
                      (jti is not None and entry.identity.jti == jti)
                      or (subject is not None and entry.identity.subject == subject)
                      or (client_id is not None and entry.identity.client_id == client_id))]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
        self._hand.clear()
