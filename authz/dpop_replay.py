"""A DPoP proof is used once (RFC 9449 §11.1): the `jti`s seen within the `iat` window.

`ReplayCache` is one worker's memory, bounded and expiring: with the Redis store, the
composition root uses the store instead (`sidecar/container.py`: one SET NX with expiry per
proof, shared by every worker and replica). When the cache is full its oldest entry goes and
the window narrows instead of opening a gap: from then on a proof must be newer than the
newest one forgotten, so a forgotten proof is still refused (as too old)."""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

_SWEEP_PER_INSERT = 4


class ReplayCache:
    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._clock = clock
        self._until: dict[str, float] = {}
        self._order: deque[str] = deque()  # keys, oldest first
        self._floor = 0.0  # the latest `until` forgotten before it passed

    def __len__(self) -> int:
        return len(self._until)

    def first_use(self, key: str, until: float) -> bool:
        """True the first time `key` is seen (it is then kept until `until`), False for a replay,
        or for a proof that might have been forgotten (see above)."""
        now = self._clock()
        if not until > now or until <= self._floor:  # `not >`: a NaN is refused too
            return False
        seen = self._until.get(key)
        if seen is not None and seen > now:
            return False
        entries, order = self._until, self._order
        entries[key] = until
        order.append(key)
        for _ in range(_SWEEP_PER_INSERT):  # expired ones at the head go now
            head = order[0]
            if entries.get(head, 0.0) > now:
                break
            order.popleft()
            entries.pop(head, None)
        while len(entries) > self._max:
            old = order.popleft()
            forgotten = entries.pop(old, None)
            if forgotten is not None and forgotten > now:
                self._floor = max(self._floor, forgotten)
        return True
