"""grant_type=password: a user of the client's tenant, with username and password."""

from __future__ import annotations

from starlette.requests import Request

from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidGrant
from sidecar.oauth.grants.base import Grant, Validated, access_ttl, login_scopes, refresh_for_login
from sidecar.oauth.params import Params, required
from sidecar.store.records import Client, RefreshRecord


class PasswordGrant(Grant[Validated]):
    grant_type = "password"

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> Validated:
        assert client is not None  # client_required: the endpoint authenticated it
        username = required(params, "username")
        password = required(params, "password")
        tenant = client.tenant  # the client decides the tenant, never the request
        keys = ctx.throttle.keys(request, "user", f"{tenant}:{username}")
        failures = await ctx.throttle.check("user", keys, InvalidGrant)
        user = await ctx.credentials.check(tenant, username, password)
        if user is None:
            await ctx.throttle.failed("user", keys)
            raise InvalidGrant("invalid username or password")
        await ctx.throttle.succeeded(keys, failures)
        granted = login_scopes(params.get("scope"), client.scopes, user.scopes)
        return Validated(subject=user.subject, client_id=client.client_id, tenant=tenant, scope=granted,
                         ttl=access_ttl(ctx, client, params), org_id=user.org_id, project_ids=user.project_ids,
                         **refresh_for_login(client, params, granted))
