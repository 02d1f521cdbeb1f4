"""grant_type=refresh_token: rotation on every use; reuse revokes the whole family.

A rotation is safe to retry, and within `refresh.reuse_grace_seconds` of a rotation the same
old token gets the same successor again (a lost answer, a client retry after a 503) with a
new access token: minting one costs a signature, keeping the first would cost the store a
sealed JWT per rotation; both are valid and both are revoked with the family."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from sidecar.oauth import successor
from sidecar.oauth.certificates import check_bound_family
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidDpopProof, InvalidGrant
from sidecar.oauth.grants.base import (Grant, TokenAnswer, Validated, access_ttl, bound_claims, granted_scopes,
                                       refuse_failed_rotation, token_answer)
from sidecar.oauth.issuer import FAMILY_CLAIM, REFRESH_PREFIX, new_refresh_token, parse_refresh_token
from sidecar.oauth.params import Params, required
from sidecar.store.base import RefreshKey
from sidecar.store.records import Client, RefreshRecord

log = logging.getLogger("sidecar.oauth.refresh")


@dataclass(kw_only=True)
class Rotating(Validated):
    """A valid refresh: the token presented and its record, to be replaced by a successor."""

    old: RefreshRecord
    secret: str = field(repr=False)  # the presented token's secret: its successor is sealed under it
    rotate: bool = True  # the client's refresh_rotation: off, the same token stays valid (Wazo's way)


class RefreshTokenGrant(Grant[Rotating]):
    grant_type = "refresh_token"

    def prefetch(self, params: Params) -> RefreshKey | None:
        presented = parse_refresh_token(params.get("refresh_token", ""))
        return presented.key() if presented else None

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> Rotating:
        assert client is not None  # client_required: the endpoint authenticated it
        presented = parse_refresh_token(required(params, "refresh_token"))
        if presented is None:
            raise InvalidGrant("refresh token is malformed")
        record = prefetched  # read with the client: `prefetch` named it
        if record is None or record.held:  # a held token is traded by access token (held_refresh.py)
            raise InvalidGrant("refresh token is unknown")
        if record.client_id != client.client_id:
            raise InvalidGrant("refresh token was issued to another client")
        if record.family_expires_at <= time.time():
            raise InvalidGrant("refresh token has expired")
        # a public client's family bound to its certificate: checked before the endpoint asks the
        # client's setting for one (invalid_request), so a stolen token is always invalid_grant
        check_bound_family(request, ctx.settings.trusted_proxy_hops, record.x5t_s256)
        granted = granted_scopes(params.get("scope"), record.scope.split())
        return Rotating(subject=record.subject, client_id=client.client_id, tenant=record.tenant or None,
                        scope=granted, ttl=access_ttl(ctx, client, params), org_id=record.org_id,
                        project_ids=record.project_ids, with_refresh=True, old=record, secret=presented.secret,
                        rotate=client.refresh_rotation)

    async def issue(self, ctx: OAuthContext, v: Rotating) -> TokenAnswer:
        old, secret = v.old, v.secret
        if old.jkt is not None and old.jkt != v.jkt:  # a public client's family is bound to its DPoP key
            raise InvalidDpopProof("this refresh token is bound to a DPoP key: send a DPoP proof signed with it")
        token = ctx.issuer.access_token(subject=v.subject, client_id=v.client_id, tenant=v.tenant, scope=v.scope,
                                        ttl=v.ttl, org_id=v.org_id, project_ids=v.project_ids,
                                        extra=bound_claims(v, {**v.extra, FAMILY_CLAIM: old.family}))
        if not v.rotate:
            return await self._keep(ctx, v, token.token, (token.claims["jti"], token.claims["exp"]))
        rt, new = new_refresh_token(client_id=old.client_id, tenant=old.tenant, subject=old.subject,
                                    scope=" ".join(sorted(v.scope)), family_expires_at=old.family_expires_at,
                                    family=old.family, org_id=old.org_id, project_ids=old.project_ids, jkt=old.jkt,
                                    x5t_s256=old.x5t_s256)
        # the successor and the new access token's jti are stored in the same atomic step
        # that marks the old token used; revocation of its family, subject or client is checked there too
        grace = ctx.settings.refresh.reuse_grace_seconds
        sealed = successor.seal(secret, old.family, rt) if grace > 0 else ""
        rotation = await ctx.store.rotate_refresh(old, new, (token.claims["jti"], token.claims["exp"]), time.time(),
                                                  grace=grace, sealed=sealed)
        if rotation.outcome == "replayed":
            first = successor.unseal(secret, old.family, rotation.successor or "")
            if first is None:  # not sealed under this token: cannot happen unless the store was altered
                raise InvalidGrant("refresh token was already used")
            rt = first
            log.info("refresh token presented again within the grace period: same successor",
                     extra={"family": old.family[:8], "client_id": old.client_id})
        else:
            await refuse_failed_rotation(ctx, old, rotation.outcome, what="refresh token", reuse=("reused",),
                                         reused="refresh token was already used; its session has been revoked",
                                         revoked="refresh token has been revoked")
        answer = token_answer(token.token, v)
        answer["refresh_token"] = rt
        return answer

    async def _keep(self, ctx: OAuthContext, v: Rotating, access_token: str, access: tuple[str, float]) -> TokenAnswer:
        """A client with rotation off: the same refresh token again, the new access token added
        to its family (revoking the family revokes it too). Used tokens stay refused: a token
        rotated before the client's rotation was turned off is not brought back."""
        old = v.old
        if old.used:
            raise InvalidGrant("refresh token was already used")
        if await ctx.store.family_revoked(old.family) or await ctx.store.is_revoked(
                None, old.subject, old.client_id, old.created):
            raise InvalidGrant("refresh token has been revoked")
        await ctx.store.put_refresh(old, access)
        answer = token_answer(access_token, v)
        answer["refresh_token"] = f"{REFRESH_PREFIX}-{old.family}-{v.secret}"
        return answer
