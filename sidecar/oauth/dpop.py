"""DPoP at the token endpoint (RFC 9449 §5): a `DPoP` proof on a token request binds the
access token issued (`cnf.jkt`, `token_type: DPoP`) and, for a public client, its refresh
tokens, to the proof's key. Every grant calls `dpop_binding` the same way (the endpoint does it
once, before the grant validates)."""

from __future__ import annotations

from starlette.requests import Request

from authz.dpop import ProofError, normalize_url
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidDpopProof, UseDpopNonce
from sidecar.store.once import use_once_within
from sidecar.store.records import Client

TOKEN_PATH = "/oauth/token"


def addressed_url(ctx: OAuthContext, request: Request) -> str | None:
    """The URL the client addressed, normalised: the scheme (X-Forwarded-Proto believed only
    behind trusted proxies) and the Host header of the request, and its path."""
    scheme = request.url.scheme
    if ctx.settings.trusted_proxy_hops >= 1:
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip() or scheme
    host = request.headers.get("host", "")
    return normalize_url(f"{scheme}://{host}{request.url.path}") if host else None


async def dpop_binding(ctx: OAuthContext, request: Request, client: Client | None, path: str = TOKEN_PATH
                       ) -> str | None:
    """The RFC 7638 thumbprint of the key a token request proves it holds (its `DPoP` proof
    checked: htm POST, htu this endpoint as the client addressed it or under the issuer URL,
    iat window, jti used once, nonce when nonces are on), or None when it sends no proof and
    its client does not require one (`dpop_bound_access_tokens`). Raises InvalidDpopProof or
    UseDpopNonce (400, RFC 9449 §5 and §8), or StoreUnavailable when the jti could not be
    recorded within `dpop.replay_timeout_seconds` (503 temporarily_unavailable)."""
    values = request.headers.getlist("dpop")
    if not values:
        if client is not None and client.dpop_bound_access_tokens:
            raise InvalidDpopProof("this client must send a DPoP proof (dpop_bound_access_tokens)")
        return None
    if len(values) > 1:
        raise InvalidDpopProof("exactly one DPoP header is allowed")
    checker = ctx.dpop
    try:
        proof = checker.check(values[0], "POST", addressed_url(ctx, request), None, None,
                              normalize_url(ctx.settings.issuer + path))
    except ProofError as exc:
        if exc.error == "use_dpop_nonce":
            raise UseDpopNonce(exc.description, headers={"DPoP-Nonce": checker.nonces.current()}) from None
        raise InvalidDpopProof(exc.description) from None
    # bounded as at ext_authz: a stalled store is a 503 (`guarded`) within the timeout, and no
    # token is issued on a proof whose jti was not recorded
    if not await use_once_within(ctx.store, "dpop-token:" + proof.replay_key, proof.replay_until,
                                 ctx.settings.dpop.replay_timeout_seconds):
        raise InvalidDpopProof("DPoP proof was already used")
    return proof.jkt


def bound_refresh(client: Client | None) -> bool:
    """Refresh tokens of public clients (no client authentication) are bound to the DPoP key
    too (RFC 9449 §5), and to the client certificate (RFC 8705 §4); a confidential client's
    are bound by its authentication already."""
    return client is not None and client.token_endpoint_auth_method == "none"
