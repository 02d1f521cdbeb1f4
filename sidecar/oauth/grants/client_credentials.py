"""grant_type=client_credentials: an app client, or a service user's secret. No refresh token."""

from __future__ import annotations

from starlette.requests import Request

from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidClient
from sidecar.oauth.grants.base import Grant, Validated, access_ttl, granted_scopes
from sidecar.oauth.params import Params
from sidecar.store.records import Client, RefreshRecord


class ClientCredentialsGrant(Grant[Validated]):
    grant_type = "client_credentials"

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> Validated:
        assert client is not None  # client_required: the endpoint authenticated it
        ttl = access_ttl(ctx, client, params)
        if client.service_user_id:
            su = await ctx.store.get_service_user(client.service_user_id)
            if su is None:
                raise InvalidClient("the service user of this secret no longer exists")
            granted = granted_scopes(params.get("scope"), client.scopes, su.scopes)
            return Validated(subject=su.id, client_id=client.client_id, tenant=su.tenant, scope=granted, ttl=ttl,
                             org_id=su.org_id, project_ids=su.project_ids)
        granted = granted_scopes(params.get("scope"), client.scopes)
        return Validated(subject=client.client_id, client_id=client.client_id, tenant=client.tenant,
                         scope=granted, ttl=ttl)
