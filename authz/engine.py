"""The decision engine: one request in, one Decision (and the token's identity) out, read top
to bottom as extract → cache → verify → policy → mutation. Never raises (docs/architecture.md,
rule 3)."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Tuple

from authz import jose, policy
from authz.cache import Entry, TokenCache
from authz.decision import MISSING_TOKEN, Decision, forbidden, unauthorized
from authz.errors import TokenError, Unavailable
from authz.extract import DpopToken, TokenExtractor
from authz.identity import Identity
from authz.introspection import Introspector
from authz.metrics import AuthzMetrics
from authz.mtls import CertificateBinding
from authz.mutation import Mutator
from authz.now_or_later import Later, NowOrLater, settled
from authz.policy import RuleBook, Rules
from authz.request import AuthRequest
from authz.verify import JwtVerifier

log = logging.getLogger("authz.engine")

RevocationCheck = Callable[[Identity], Awaitable[bool]]
Checked = Tuple[Decision, "Identity | None"]  # a personal decision is completed by the identity
INTERNAL_ERROR = forbidden("authorization could not be decided", "internal_error")
UNAVAILABLE = Decision(False, 503, "store_unavailable", error="temporarily_unavailable",
                       description="the revocation store is unavailable; retry later")
PROJECT_HEADER = "x-project"
_sha256 = hashlib.sha256
DPOP_OFF = unauthorized("DPoP is not accepted here", "dpop_off")


def _dpop_scheme(req: AuthRequest) -> bool:
    return req.headers.get("authorization", "")[:5].lower() == "dpop "


@dataclass(slots=True)
class _Pending:
    """A bound token's check waiting for the store (the jti of its proof)."""
    later: Any
    entry: Entry


class Engine:
    def __init__(self, extractor: TokenExtractor, verifier: JwtVerifier, cache: TokenCache, rules: RuleBook,
                 mutator: Mutator, metrics: AuthzMetrics, introspector: Introspector | None = None,
                 is_revoked: RevocationCheck | None = None, trusted_proxy_hops: int = 0,
                 dpop: Any = None) -> None:
        self.extractor = extractor
        self.verifier = verifier
        self.cache = cache
        self.rules = rules
        self.mutator = mutator
        self.metrics = metrics
        self.introspector = introspector
        self.is_revoked = is_revoked
        self.certificates = CertificateBinding(trusted_proxy_hops)  # RFC 8705 bound tokens
        self.dpop = dpop  # authz/dpop_binding.py: DpopBinding (None: DPoP-bound tokens are refused)
        # no token: a constant either way (with DPoP, its challenge and algs too: RFC 9449 §7.2)
        self._missing = MISSING_TOKEN if dpop is None else dpop.missing_token
        self._anonymous = mutator.allow(None, None)

    def set_mutator(self, mutator: Mutator) -> None:
        """New header names (a reload); the caller drops the cached decisions of the old ones."""
        self.mutator = mutator
        self._anonymous = mutator.allow(None, None)

    async def check(self, req: AuthRequest, mode: str = "grpc") -> Checked:
        """`check_now`, awaited."""
        return await settled(self.check_now(req, mode))

    def check_now(self, req: AuthRequest, mode: str = "grpc") -> NowOrLater[Checked]:
        """The decision and the token's identity: now when no I/O is needed (no token, a
        malformed or a cached one: no coroutine per cache hit), else later, verifying the token
        from this lookup on. A personal decision is shared by every token of its shape:
        transports add the identity's own part when they encode it."""
        started = time.perf_counter()
        try:
            decision, identity, key, token, rules = self._decide_now(req)
        except Exception:
            log.exception("ext_authz internal error; denying")
            decision, identity, key, token, rules = INTERNAL_ERROR, None, b"", "", None
        if decision is None:
            if identity is not None:  # a bound token: the proof is checked, its jti is looked up
                return self._bound_later(req, mode, started, key, identity, rules)  # type: ignore[arg-type]
            return self._decide_later(req, mode, started, key, token, rules)
        if decision.allowed:  # `_done` of an allow, spelled out: most Checks end here
            self.metrics.decision(mode, True, decision.reason, time.perf_counter() - started)
            return decision, identity
        return self._done(req, mode, started, decision, identity, key)

    async def _decide_later(self, req: AuthRequest, mode: str, started: float, key: bytes, token: str,
                            rules: Rules) -> Checked:
        try:
            decision, identity = await self._verify_then_decide(req, key, token, rules)
        except Unavailable as exc:  # an outage, not a bug: no traceback, nothing cached
            log.warning("ext_authz: %s; denying", exc)
            decision, identity = UNAVAILABLE, None
        except Exception:
            log.exception("ext_authz internal error; denying")
            decision, identity = INTERNAL_ERROR, None
        return self._done(req, mode, started, decision, identity, key)

    async def _bound_later(self, req: AuthRequest, mode: str, started: float, key: bytes, pending: "_Pending",
                           rules: Rules) -> Checked:
        try:
            refusal = await pending.later
        except Unavailable as exc:
            log.warning("ext_authz: %s; denying", exc)
            refusal = UNAVAILABLE
        except Exception:
            log.exception("ext_authz internal error; denying")
            refusal = INTERNAL_ERROR
        if refusal is not None:
            return self._done(req, mode, started, refusal, None, key)
        decision = self._apply(pending.entry, rules, req.headers.get(PROJECT_HEADER))
        return self._done(req, mode, started, decision, pending.entry.identity, key)

    def _done(self, req: AuthRequest, mode: str, started: float, decision: Decision, identity: Identity | None,
              key: bytes) -> Checked:
        self.metrics.decision(mode, decision.allowed, decision.reason, time.perf_counter() - started)
        if not decision.allowed:
            if self.dpop is not None and not decision.dpop_algs and _dpop_scheme(req):
                decision = self.dpop.challenged(decision)  # RFC 9449 §7.1: a DPoP request's refusal says DPoP
            # the path without its query: URLs carry tokens and other secrets there
            log.info("deny", extra={"status": decision.status, "reason": decision.reason,
                                    "token_sha256": key.hex()[:12], "path": req.path.partition("?")[0][:200]})
        return decision, identity

    def _decide_now(self, req: AuthRequest) -> tuple[Decision | None, Identity | None, bytes, str, Rules | None]:
        """(decision, identity, token hash, token, rules); decision None: not cached, verify first."""
        try:
            token = self.extractor.extract(req)
        except TokenError as exc:
            return unauthorized(exc.description, exc.reason), None, b"", "", None
        rules = self.rules.for_request(req.path, req.context_extensions)
        if token is None:
            return (self._anonymous if rules.allow_anonymous else self._missing), None, b"", "", rules
        key = _sha256(token.encode()).digest()  # cache.token_key, spelled out on the hot path
        entry = self.cache.get(key)
        if entry is None:
            return None, None, key, token, rules
        self.metrics.cache_hits += 1
        identity = entry.identity
        if identity is None:
            return entry.memo, None, key, token, rules
        if identity.cnf is not None or type(token) is DpopToken:
            refusal = self._bound(req, identity, token, rules)
            if type(refusal) is Later:  # decision None, identity the pending check: check_now goes on later
                return None, _Pending(refusal, entry), key, token, rules  # type: ignore[return-value]
            if refusal is not None:
                return refusal, None, key, token, rules  # type: ignore[return-value]
        project = req.headers.get(PROJECT_HEADER)
        # `Entry.decision_for`'s first case without a call: this token met these rules before
        if entry.memo_rules is rules and entry.memo_project == project:
            return entry.memo, identity, key, token, rules
        return self._apply(entry, rules, project), identity, key, token, rules

    async def _verify_then_decide(self, req: AuthRequest, key: bytes, token: str, rules: Rules) -> Checked:
        self.metrics.cache_misses += 1
        try:
            identity = await self._authenticate(token)
        except TokenError as exc:
            refusal = unauthorized(exc.description, exc.reason)
            self.cache.put_refusal(key, refusal)
            return refusal, None
        entry = self.cache.put(key, identity)
        if identity.cnf is not None or type(token) is DpopToken:
            refusal = await settled(self._bound(req, identity, token, rules))
            if refusal is not None:
                return refusal, None
        return self._apply(entry, rules, req.headers.get(PROJECT_HEADER)), identity

    def _bound(self, req: AuthRequest, identity: Identity, token: str, rules: Rules) -> NowOrLater[Decision | None]:
        """The sender-constraint hook: called when the token is bound (`identity.cnf`) or came
        with the DPoP scheme, on every request (cached or not). A refusal, or None when the
        sender proved it holds the token's key; later when the check needs the store."""
        cnf = identity.cnf
        if cnf is not None and cnf.x5t is not None:  # RFC 8705: before DPoP, which may answer later
            refused = self.certificates.refusal(cnf.x5t, req)
            if refused is not None:
                return refused
        if self.dpop is not None:
            if type(token) is DpopToken or (identity.cnf is not None and identity.cnf.jkt is not None):
                return self.dpop.check(req, identity, token, rules)
        elif identity.cnf is not None and identity.cnf.jkt is not None or type(token) is DpopToken:
            return DPOP_OFF
        return None

    def _apply(self, entry: Entry, rules: Rules, project: str | None) -> Decision:
        """The route's rules applied to a cached identity, remembered per (rules, the request's
        `x-project`)."""
        decision = entry.decision_for(rules, project)
        if decision is None:
            outcome = policy.check(entry.identity, rules, project)
            decision = outcome if isinstance(outcome, Decision) else self.mutator.allow(entry.identity, outcome)
            entry.remember(rules, project, decision)
        return decision

    async def _authenticate(self, token: str) -> Identity:
        if jose.looks_like_jwt(token) or token.count(".") == 4:
            identity = await self.verifier.verify(token)
        elif self.introspector is not None:
            if len(token) > jose.MAX_TOKEN_BYTES:
                raise TokenError("token is too large", "malformed")
            identity = await self.introspector.introspect(token)
        else:
            raise TokenError("opaque tokens are not accepted here", "malformed")
        if self.is_revoked is not None and await self.is_revoked(identity):
            raise TokenError("token has been revoked", "revoked")
        return identity
