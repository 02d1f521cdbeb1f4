"""Failed logins slow down the address they come from, never the account everywhere.

A failure counts twice: on (account, source address) and on the source address alone. Past
`login_max_failures` on the first, or `login_source_max_failures` on the second, each new
failure blocks that key for a growing delay (`login_delay_seconds` doubled each time, at most
`login_lockout_seconds`): attempts under a running delay are refused with 429 and Retry-After
before any secret is checked. The real user or client at another address has keys of its own
and still gets in. Counts live in the store, so replicas sharing Redis share them.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Literal

from starlette.requests import Request

from config.settings import Settings
from sidecar.oauth.errors import OAuthError, throttled
from sidecar.oauth.metrics import OAuthMetrics
from sidecar.source_address import source_address
from sidecar.store import Store
from sidecar.store.base import Penalty

Kind = Literal["client", "user"]
_BY = ("account", "source")


def _short(account: str) -> str:
    """Keys stay small whatever an attacker sends as an id."""
    return account if len(account) <= 128 else "sha256:" + hashlib.sha256(account.encode()).hexdigest()


class LoginThrottle:
    def __init__(self, settings: Settings, store: Store, metrics: OAuthMetrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        window = settings.login_failure_window_seconds
        cap = float(settings.login_lockout_seconds)
        self.penalties = (Penalty(settings.login_max_failures, settings.login_delay_seconds, cap, window),
                          Penalty(settings.login_source_max_failures, settings.login_delay_seconds, cap, window))

    def keys(self, request: Request, kind: Kind, account: str) -> tuple[str, str]:
        """(account at source, source): the throttle keys of one attempt."""
        source = source_address(request, self.settings.trusted_proxy_hops)
        return f"{kind}:{_short(account)}@{source}", f"source:{source}"

    def refuse_if_blocked(self, kind: Kind, blocked_until: tuple[float, ...], error: type[OAuthError]) -> None:
        """429 while any of the keys' delays runs."""
        now = time.time()
        latest, by = max((until, by) for until, by in zip(blocked_until, _BY)) if blocked_until else (0.0, "")
        if latest > now:
            self.metrics.throttled.labels(kind, by).inc()
            raise throttled(error, max(1, math.ceil(latest - now)))

    async def check(self, kind: Kind, keys: tuple[str, str], error: type[OAuthError]) -> int:
        """Refuse a blocked attempt; else the failures counted on (account, source)."""
        failures, blocked_until = await self.store.throttle_state(keys)
        self.refuse_if_blocked(kind, blocked_until, error)
        return failures

    async def failed(self, kind: Kind, keys: tuple[str, str]) -> None:
        self.metrics.login_failures.labels(kind).inc()
        for key, penalty in zip(keys, self.penalties):
            await self.store.record_failure(key, penalty)

    async def succeeded(self, keys: tuple[str, str], failures: int) -> None:
        """A success forgets the failures of (account, source); the source's own count stays,
        or one account the attacker holds would wipe what it did to the others."""
        if failures:
            await self.store.clear_failures(keys[0])
