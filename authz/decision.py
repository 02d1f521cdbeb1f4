"""Decision: the one result type of the engine (docs/architecture.md, rule 3). Plain data:
the headers of an allow are derived from it by `authz.mutation.Mutator`, and each transport
adapter encodes it its own way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


_BEARER = 'Bearer realm="auth-sidecar"'
_DPOP_ERRORS = ("invalid_token", "insufficient_scope", "invalid_request", "invalid_dpop_proof", "use_dpop_nonce")


@dataclass(slots=True, eq=False)
class Decision:
    allowed: bool
    status: int  # 200, 401 or 403
    reason: str  # metric label: "ok", "missing_token", "expired", "insufficient_scope", ...
    error: str = ""  # RFC 6750 error code ("" when the token is missing)
    description: str = ""
    scope: str = ""  # scope needed, for insufficient_scope
    # An allow keeps who and which project; its headers are derived when it is encoded.
    identity: Any = None
    project: str | None = None
    # A personal allow is shared by every token of one shape (same tenant, org, client,
    # scopes, issuer, project): `identity` is a representative whose own `sub`/`jti` are never
    # used, and transports add the requesting token's own part per response. Cached tokens
    # then hold no decision of their own (memory per cached token, bench row `rss_100k`).
    personal: bool = False
    # Transport adapters memo their encoded form here, keyed by adapter (`remember`), so that
    # a decision is encoded once per transport; None until the first one does.
    encoded: dict[str, Any] | None = None
    # a refusal of a DPoP request (RFC 9449 §7.1): the challenge is `DPoP` with these `algs`,
    # and `nonce` goes out as the DPoP-Nonce header (with error use_dpop_nonce)
    dpop_algs: str = ""
    nonce: str = ""
    # with `dpop_algs`: the Bearer challenge first, then the DPoP one, in one header value (the
    # missing-token 401 when DPoP is accepted, RFC 9449 §7.2; one value, RFC 9110 §11.6.1,
    # because both transports send one `www-authenticate` header and Envoy passes it on intact)
    bearer_too: bool = False

    @property
    def www_authenticate(self) -> str:
        if self.dpop_algs:
            return _BEARER + ", " + self._dpop_challenge() if self.bearer_too else self._dpop_challenge()
        parts = [_BEARER]
        if self.error and self.error in ("invalid_token", "insufficient_scope", "invalid_request"):
            parts.append(f'error="{self.error}"')
            if self.description:
                parts.append('error_description="' + self.description.replace('"', "'") + '"')
            if self.scope:
                parts.append(f'scope="{self.scope}"')
        return ", ".join(parts)

    def _dpop_challenge(self) -> str:
        parts = ['DPoP realm="auth-sidecar"']
        if self.error in _DPOP_ERRORS:  # not an outage's or a policy's own code (RFC 9449 §7.1, RFC 6750 §3.1)
            parts.append(f'error="{self.error}"')
            if self.description:
                parts.append('error_description="' + self.description.replace('"', "'") + '"')
            if self.scope:
                parts.append(f'scope="{self.scope}"')
        parts.append(f'algs="{self.dpop_algs}"')
        return ", ".join(parts)

    @property
    def body(self) -> bytes:
        if not self.error:
            return json.dumps({"error": "unauthorized", "error_description": self.description}).encode()
        return json.dumps({"error": self.error, "error_description": self.description}).encode()


def remember(decision: Decision, adapter: str, encoded: Any) -> Any:
    """Keep `encoded` as `adapter`'s form of `decision` (read back as decision.encoded[adapter])."""
    if decision.encoded is None:
        decision.encoded = {}
    decision.encoded[adapter] = encoded
    return encoded


def unauthorized(description: str, reason: str, error: str = "invalid_token") -> Decision:
    return Decision(False, 401, reason, error=error, description=description)


def forbidden(description: str, reason: str, error: str = "access_denied", scope: str = "") -> Decision:
    return Decision(False, 403, reason, error=error, description=description, scope=scope)


MISSING_TOKEN = unauthorized("a bearer token is required", "missing_token", error="")


def missing_token(dpop_algs: str) -> Decision:
    """The 401 for a request with no token (RFC 6750 §3: a challenge, no error code): when DPoP
    proofs are accepted (`dpop_algs`, the `algs` of RFC 9449 §7.1), the Bearer and the DPoP
    challenge, so a client learns both schemes and the algorithms before it sends a token. Built
    once per engine: a missing token is answered with a constant, like any memoised deny."""
    if not dpop_algs:
        return MISSING_TOKEN
    return Decision(False, 401, MISSING_TOKEN.reason, description=MISSING_TOKEN.description, dpop_algs=dpop_algs,
                    bearer_too=True)
