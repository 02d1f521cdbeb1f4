"""POST /oauth/token: parse, authenticate the client, dispatch to the grant, answer."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from sidecar.oauth import client_auth, responses
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import OAuthError, TemporarilyUnavailable, UnauthorizedClient, UnsupportedGrantType
from sidecar.oauth.grants import GRANTS
from sidecar.oauth.params import read_params, required
from sidecar.store import StoreUnavailable

log = logging.getLogger("sidecar.oauth")


async def guarded(ctx: OAuthContext, work) -> Response:
    """Turns every OAuthError into its RFC answer and a store outage into 503."""
    try:
        return await work()
    except OAuthError as exc:
        ctx.metrics.failures.labels(exc.error).inc()
        return responses.error(exc)
    except StoreUnavailable as exc:
        log.error("store unavailable", extra={"error": str(exc)})
        ctx.metrics.failures.labels("temporarily_unavailable").inc()
        return responses.error(TemporarilyUnavailable("the token store is unavailable; retry later",
                                                      headers={"Retry-After": "1"}))


class TokenEndpoint:
    def __init__(self, ctx: OAuthContext) -> None:
        self.ctx = ctx

    async def handle(self, request: Request) -> Response:
        return await guarded(self.ctx, lambda: self._token(request))

    async def _token(self, request: Request) -> Response:
        ctx = self.ctx
        params = await read_params(request, ctx.settings.max_body_bytes)
        grant_type = required(params, "grant_type")
        grant = GRANTS.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type[:64]} is not supported")
        request.state.grant_type = grant_type  # for the token request span (sidecar/tracing/token.py)
        client, looked_up = await client_auth.authenticate_reading(ctx, request, params, grant.client_required,
                                                                   grant.lookup(params))
        if client is not None:
            request.state.client_id = client.client_id
        if client is not None and grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use grant_type {grant_type}")
        validated = await grant.validate(ctx, request, params, client, looked_up)
        request.state.client_id = validated.client_id
        answer = await grant.issue(ctx, validated)
        ctx.metrics.issued.labels(grant_type, validated.client_id).inc()
        return responses.ok(answer)
