"""grant_type=urn:auth-sidecar:grant-type:held-refresh: backend-held refresh (seed 003).

A client with `refresh_policy: held` never receives a refresh token. The service keeps it,
bound to the access token's `jti`: the held token's secret *is* that jti, so its record sits
at (family, digest(jti)), where the family is named by the access token's `sid` claim. The
client trades its current access token (expired or not, while the family lives) plus its own
client authentication for a new one: the held token rotates with the same atomic store step
as a refresh token (`store.rotate_refresh`), so an access token is traded once, and a second
trade of the same one is reuse: the family is revoked. No grace period: a held trade has no
refresh token to hand out twice. The signature is checked with the key ring (a token whose
signing key was retired and dropped can no longer be traded); `exp` is not."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from authz import jose
from authz.errors import TokenError
from sidecar.oauth.certificates import check_bound_family
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import digest
from sidecar.oauth.errors import InvalidDpopProof, InvalidGrant
from sidecar.oauth.grants.base import (HELD_REFRESH, Grant, TokenAnswer, Validated, access_ttl, bound_claims,
                                       refuse_failed_rotation, token_answer)
from sidecar.oauth.issuer import HELD_CLAIM, new_refresh_token
from sidecar.oauth.params import Params, required
from sidecar.store.base import RefreshKey
from sidecar.store.records import Client, RefreshRecord

log = logging.getLogger("sidecar.oauth.held")


def held_key(token: str) -> RefreshKey | None:
    """Where a held access token's refresh record would be, read from its (unverified) payload:
    only a prefetch address; the record is used after the signature is checked."""
    try:
        claims = jose.parse(token).claims
    except TokenError:
        return None
    family, jti = claims.get(HELD_CLAIM), claims.get("jti")
    if not isinstance(family, str) or not isinstance(jti, str) or not family or not jti:
        return None
    return family, digest(jti)


async def held_claims(ctx: OAuthContext, token: str) -> dict[str, Any] | None:
    """The claims of one of our own held-session access tokens, signature checked, `exp` not."""
    try:
        jws = jose.parse(token)
    except TokenError:
        return None
    claims, header = jws.claims, jws.header
    if claims.get("iss") != ctx.settings.issuer or not isinstance(claims.get(HELD_CLAIM), str):
        return None
    kid = header.get("kid")
    key = await ctx.issuer.keyring.key_for(kid) if isinstance(kid, str) else None
    if key is None or header.get("alg") != key.alg:
        return None
    try:
        if not key.verify(jws.signing_input, jws.signature):
            return None
    except Exception:
        return None
    return claims


@dataclass(kw_only=True)
class Trading(Validated):
    """A valid trade: the held record to rotate, and the presented access token to revoke."""

    old: RefreshRecord
    presented: tuple[str, float]  # (jti, exp)


class HeldRefreshGrant(Grant[Trading]):
    grant_type = HELD_REFRESH

    def prefetch(self, params: Params) -> RefreshKey | None:
        return held_key(params.get("access_token", ""))

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> Trading:
        assert client is not None  # client_required: the endpoint authenticated it
        claims = await held_claims(ctx, required(params, "access_token"))
        if claims is None:
            raise InvalidGrant("access_token is not a held-session access token of this service")
        if claims.get("client_id") != client.client_id:
            raise InvalidGrant("access_token was issued to another client")
        record = prefetched
        if record is None or not record.held or record.client_id != client.client_id:
            raise InvalidGrant("access_token has no held session")
        if record.family_expires_at <= time.time():
            raise InvalidGrant("the held session has expired")
        check_bound_family(request, ctx.settings.trusted_proxy_hops, record.x5t_s256, "the held session")
        return Trading(subject=record.subject, client_id=client.client_id, tenant=record.tenant or None,
                       scope=set(record.scope.split()), ttl=access_ttl(ctx, client, params), org_id=record.org_id,
                       project_ids=record.project_ids, with_refresh=True, held=True, old=record,
                       presented=(str(claims["jti"]), float(claims.get("exp", 0))))

    async def issue(self, ctx: OAuthContext, v: Trading) -> TokenAnswer:
        old = v.old
        if old.jkt is not None and old.jkt != v.jkt:  # a public client's held session is bound to its DPoP key
            raise InvalidDpopProof("this session is bound to a DPoP key: send a DPoP proof signed with it")
        token = ctx.issuer.access_token(subject=v.subject, client_id=v.client_id, tenant=v.tenant, scope=v.scope,
                                        ttl=v.ttl, org_id=v.org_id, project_ids=v.project_ids,
                                        extra=bound_claims(v, {**v.extra, HELD_CLAIM: old.family}))
        _, new = new_refresh_token(client_id=old.client_id, tenant=old.tenant, subject=old.subject, scope=old.scope,
                                   family_expires_at=old.family_expires_at, family=old.family, org_id=old.org_id,
                                   project_ids=old.project_ids, secret=token.claims["jti"], jkt=old.jkt,
                                   x5t_s256=old.x5t_s256)
        rotation = await ctx.store.rotate_refresh(old, new, (token.claims["jti"], token.claims["exp"]), time.time())
        # nothing to hand out twice here: a replay within the grace period is reuse too
        await refuse_failed_rotation(ctx, old, rotation.outcome, what="the held session", reuse=("reused", "replayed"),
                                     reused="access_token was already traded; its session has been revoked",
                                     revoked="the held session has been revoked")
        await ctx.revoker.access_tokens([v.presented])  # traded: it authorizes nothing more
        return token_answer(token.token, v)
