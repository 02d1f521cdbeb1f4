"""grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523): a service user signs
a short JWT with its own private key. The stored public key pins the algorithm. What else the
assertion must carry is RFC 7523's unless the operator relaxed it (settings `jwt_bearer.*`)."""

from __future__ import annotations

import time

from starlette.requests import Request

from authz import jose
from authz.errors import TokenError
from authz.keys import key_from_jwk
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidGrant, InvalidRequest
from sidecar.oauth.grants.base import Grant, Validated, access_ttl, granted_scopes
from sidecar.oauth.params import Params
from sidecar.store.records import Client, RefreshRecord


class JwtBearerGrant(Grant[Validated]):
    grant_type = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    client_required = False

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> Validated:
        assertion = params.get("assertion", "")
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            if assertion:
                raise InvalidRequest("give the assertion once: in the body or as a Bearer header")
            assertion = bearer.strip()
        if not assertion:
            raise InvalidRequest("missing parameter assertion")
        try:
            jws = jose.parse(assertion)
        except TokenError as exc:
            raise InvalidGrant(f"assertion: {exc.description}") from None
        rules = ctx.settings.jwt_bearer
        kid = jws.header.get("kid")
        if kid is None and rules.kid_from_payload:  # safe: the signature is still checked with that key
            kid = jws.claims.get("kid")
        stored = await ctx.store.get_service_key(kid) if isinstance(kid, str) and kid else None
        if stored is None:
            raise InvalidGrant("assertion key is unknown")
        key = key_from_jwk(stored.public_jwk)
        if jws.header.get("alg") != key.alg or not key.verify(jws.signing_input, jws.signature):
            raise InvalidGrant("assertion signature is invalid")
        claims, now, leeway = jws.claims, time.time(), ctx.settings.leeway_seconds
        principal = stored.service_user_id
        if claims.get("sub") != principal:
            raise InvalidGrant("assertion sub must be the service user id")
        aud = claims.get("aud")
        if aud is None and rules.require_audience:
            raise InvalidGrant("assertion has no aud: it must be the issuer or the token endpoint")
        auds = aud if isinstance(aud, list) else [aud]
        if aud is not None and not any(a in (ctx.settings.issuer, ctx.token_endpoint) for a in auds):
            raise InvalidGrant("assertion aud must be the issuer or the token endpoint")
        if rules.require_iss_is_sub and claims.get("iss") != principal:
            raise InvalidGrant("assertion iss must be the service user id")
        exp = claims.get("exp")
        # NaN (Python's JSON reads it) compares as never expired: its jti would be kept until NaN
        if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp != exp:
            raise InvalidGrant("assertion needs a numeric exp")
        if exp <= now - leeway:
            raise InvalidGrant("assertion has expired")
        if exp > now + rules.max_lifetime + leeway:  # leeway: the signer's clock may run ahead
            raise InvalidGrant(f"assertion lifetime must be at most {rules.max_lifetime} seconds")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + leeway:
            raise InvalidGrant("assertion is not valid yet")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidGrant("assertion needs a jti")
        su = await ctx.store.get_service_user(principal)
        if su is None:
            raise InvalidGrant("service user no longer exists")
        if su.disabled or su.tenant_disabled:
            raise InvalidGrant("service user is disabled")
        if not await ctx.store.use_once(f"assertion:{principal}:{jti}", exp + leeway):
            raise InvalidGrant("assertion jti was already used")
        granted = granted_scopes(params.get("scope"), su.scopes)
        return Validated(subject=su.id, client_id=client.client_id if client else stored.kid, tenant=su.tenant,
                         scope=granted, ttl=access_ttl(ctx, client, params), org_id=su.org_id,
                         project_ids=su.project_ids)
