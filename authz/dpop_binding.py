"""The DPoP part of the engine's sender-constraint hook (`Engine._bound`): a token bound to a
key (`cnf.jkt`) is accepted only with the `DPoP` scheme and a fresh proof by that key for
this very request (RFC 9449 §7). Runs on every request of a bound token, cached or not: the
token's verification is cached, the proof is new each time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from authz.decision import Decision, missing_token
from authz.dpop import ProofChecker, ProofError, normalize_url
from authz.extract import DpopToken
from authz.identity import Identity
from authz.now_or_later import Later, NowOrLater
from authz.policy import Rules
from authz.request import AuthRequest

# (key, keep until) → first use? Now (a worker's memory) or later (the store)
FirstUse = Callable[[str, float], NowOrLater[bool]]


@lru_cache(maxsize=4096)
def _request_url(scheme: str, host: str, path: str) -> str | None:
    """The URL of a request as Envoy saw it (`path` without its query), normalised, remembered
    per (scheme, host, path): the same few come again and again, and the key is all that makes
    the URL, so a hit is the URL the request addressed, never another's."""
    return normalize_url(f"{scheme}://{host}{path}")


@lru_cache(maxsize=4096)
def _external_url(base_url: str, path: str) -> str | None:
    """The same for a route's external base URL (`dpop_base_url`)."""
    return normalize_url(base_url + path)


@lru_cache(maxsize=64)
def _deny(description: str, error: str, reason: str, algs: str) -> Decision:
    """One Decision per refusal text: its encoded answers are memoised like any deny's."""
    return Decision(False, 401, reason, error=error, description=description, dpop_algs=algs)


@lru_cache(maxsize=256)
def _challenged(status: int, reason: str, error: str, description: str, scope: str, algs: str) -> Decision:
    """One DPoP-challenged copy per kind of refusal (their texts are fixed): memoised like any deny."""
    return Decision(False, status, reason, error=error, description=description, scope=scope, dpop_algs=algs)


class DpopBinding:
    def __init__(self, checker: ProofChecker, first_use: FirstUse) -> None:
        self.checker = checker
        self.first_use = first_use
        # the 401 for no token at all: the Bearer and the DPoP challenge (RFC 9449 §7.2), one constant
        self.missing_token = missing_token(checker.algs_text)

    def check(self, req: AuthRequest, identity: Identity, token: str, rules: Rules) -> NowOrLater[Decision | None]:
        """None when the request proves possession of the token's key; else the 401 (now), or
        later when the proof's jti is looked up in the store."""
        jkt = identity.cnf.jkt if identity.cnf is not None else None
        if type(token) is not DpopToken:
            return self.deny("this token is DPoP-bound: send it with the DPoP scheme and a DPoP proof",
                             "invalid_token", "dpop_bound_as_bearer")
        if jkt is None:
            return self.deny("the DPoP scheme needs a DPoP-bound token", "invalid_token", "dpop_unbound_token")
        try:
            proof = self.checker.check(req.headers.get("dpop"), req.method, self.url(req, rules), token, jkt)
        except ProofError as exc:
            return self.refuse(exc)
        first = self.first_use(proof.replay_key, proof.replay_until)
        if type(first) is Later:
            return self._replay_later(first)  # type: ignore[arg-type]
        return None if first else self.replayed()

    async def _replay_later(self, pending: Any) -> Decision | None:
        return None if await pending else self.replayed()

    @staticmethod
    def url(req: AuthRequest, rules: Rules) -> str | None:
        """The URL the client addressed, normalised: the route's external base URL (a request
        that entered through a gateway) or the scheme and host Envoy saw, and the path."""
        path = req.path.partition("?")[0]
        if rules.dpop_base_url:
            return _external_url(rules.dpop_base_url, path)
        origin = req.origin()
        return _request_url(origin.scheme, origin.host, path)

    def challenged(self, refusal: Decision) -> Decision:
        """`refusal` (an expired token, a revoked one, a missing scope ...) as the answer to a
        request made with the DPoP scheme: the same, with the `DPoP` challenge (RFC 9449 §7.1)."""
        return _challenged(refusal.status, refusal.reason, refusal.error, refusal.description, refusal.scope,
                           self.checker.algs_text)

    def deny(self, description: str, error: str, reason: str) -> Decision:
        return _deny(description, error, reason, self.checker.algs_text)

    def refuse(self, exc: ProofError) -> Decision:
        if exc.error == "use_dpop_nonce":  # a new nonce in every such answer: not memoised
            return Decision(False, 401, "dpop_nonce", error=exc.error, description=exc.description,
                            dpop_algs=self.checker.algs_text, nonce=self.checker.nonces.current())
        return self.deny(exc.description, exc.error, "dpop_invalid_proof")

    def replayed(self) -> Decision:
        return self.deny("DPoP proof was already used", "invalid_dpop_proof", "dpop_replayed")
