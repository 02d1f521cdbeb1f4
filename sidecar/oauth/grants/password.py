"""grant_type=password: a user of the client's tenant, with username and password."""

from __future__ import annotations

from sidecar.oauth import scopes
from sidecar.oauth.errors import InvalidGrant, throttled
from sidecar.oauth.grants.base import Grant, Validated, access_ttl
from sidecar.oauth.params import required


class PasswordGrant(Grant):
    grant_type = "password"

    async def validate(self, ctx, request, params, client, looked_up=None):
        username = required(params, "username")
        password = required(params, "password")
        tenant = client.tenant  # the client decides the tenant, never the request
        throttle_key = f"user:{tenant}:{username}"
        count, retry_after = await ctx.store.failures(throttle_key)
        if count >= ctx.settings.login_max_failures:
            raise throttled(InvalidGrant, retry_after)
        user = await ctx.credentials.check(tenant, username, password)
        if user is None:
            await ctx.store.add_failure(throttle_key, ctx.settings.login_lockout_seconds)
            raise InvalidGrant("invalid username or password")
        if count:
            await ctx.store.clear_failures(throttle_key)
        granted = scopes.grant(params.get("scope"), client.scopes, user.scopes)
        return Validated(subject=user.subject, client_id=client.client_id, tenant=tenant, scope=granted,
                         ttl=access_ttl(ctx, client, params), org_id=user.org_id, project_ids=user.project_ids,
                         with_refresh="refresh_token" in client.grant_types)
