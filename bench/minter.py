"""Distinct valid access tokens for the cases, signed on every core."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from authz.keys import KeyRing, private_pem
from sidecar.oauth.issuer import TokenIssuer


def mint(issuer: TokenIssuer, n: int, prefix: str, start: int = 0) -> list[str]:
    return [issuer.access_token(subject=f"{prefix}-{i}", client_id="bench", tenant="acme", scope=["read", "write"],
                                ttl=3600, org_id="org-1", project_ids=["p1"]).token for i in range(start, start + n)]


def _mint_part(pem: bytes, issuer: str, audience: str, n: int, prefix: str, start: int) -> list[str]:
    return mint(TokenIssuer(KeyRing.from_pem(pem), issuer, audience), n, prefix, start)


class Minter:
    """Distinct valid tokens of one key, signed on every core (an RSA signature takes ~1 ms)."""

    def __init__(self, ring: KeyRing, issuer: str, audience: str) -> None:
        self.ring, self.issuer, self.audience = ring, issuer, audience
        self.pem = private_pem(ring.current.private_key)

    def __call__(self, n: int, prefix: str) -> list[str]:
        cores = len(os.sched_getaffinity(0))
        if n < 2000 or cores < 2:
            return mint(TokenIssuer(self.ring, self.issuer, self.audience), n, prefix)
        size = -(-n // cores)
        with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = [pool.submit(_mint_part, self.pem, self.issuer, self.audience, min(size, n - start), prefix, start)
                     for start in range(0, n, size)]
            return [token for part in parts for token in part.result()]
