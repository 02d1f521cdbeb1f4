"""POST /oauth/token, top to bottom: read the parameters, pick the grant, read the login state
in one store round trip, check the client against it, let the grant validate, issue, answer."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from sidecar.oauth import responses
from sidecar.oauth.certificates import binds_tokens, bound_thumbprint, certificate_refusal, presented_certificate
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import genuine_client
from sidecar.oauth.dpop import bound_refresh, dpop_binding
from sidecar.oauth.errors import (InvalidClient, OAuthError, TemporarilyUnavailable, UnauthorizedClient,
                                  UnsupportedGrantType)
from sidecar.oauth.grants import GRANTS
from sidecar.oauth.params import Params, client_credentials, read_params, required
from sidecar.store import StoreUnavailable
from sidecar.store.base import RefreshKey
from sidecar.store.records import Client, RefreshRecord

log = logging.getLogger("sidecar.oauth")


async def guarded(ctx: OAuthContext, work: Callable[[], Awaitable[Response]]) -> Response:
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
        client, prefetched = await authenticate(ctx, request, params, grant.client_required, grant.prefetch(params))
        if client is not None:
            request.state.client_id = client.client_id
        if client is not None and grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use grant_type {grant_type}")
        jkt = await dpop_binding(ctx, request, client)  # before the grant's work: a bad proof costs no password check
        validated = await grant.validate(ctx, request, params, client, prefetched)
        public = bound_refresh(client)  # its refresh tokens are bound to what binds its access tokens
        if binds_tokens(client):  # RFC 8705 §3: bound to the certificate it presented
            thumbprint = bound_thumbprint(request, ctx.settings.trusted_proxy_hops)
            validated.extra["cnf"] = {"x5t#S256": thumbprint}
            validated.refresh_x5t = thumbprint if public else None  # RFC 8705 §4
        validated.jkt = jkt
        validated.refresh_jkt = jkt if public else None
        request.state.client_id = validated.client_id
        answer = await grant.issue(ctx, validated)
        ctx.metrics.issued.labels(grant_type, validated.client_id).inc()
        return responses.ok(answer)


async def authenticate(ctx: OAuthContext, request: Request, params: Params, required: bool = True,
                       prefetch: RefreshKey | None = None) -> tuple[Client | None, RefreshRecord | None]:
    """The calling client (None when it sent no credentials and none are `required`) and the
    refresh record at `prefetch`, both read with the client's throttle state in one store round
    trip. The record is read before the client is known to be genuine: only a genuine one gets it."""
    presented = client_credentials(request, params, required)
    if presented is None:
        return None, None
    keys = ctx.throttle.keys(request, "client", presented.client_id)
    state = await ctx.store.login_state(presented.lookup_id, keys, prefetch)
    ctx.throttle.refuse_if_blocked("client", state.blocked_until, InvalidClient)
    certificate = presented_certificate(request, ctx.settings.trusted_proxy_hops)  # RFC 8705, via the proxy
    client = genuine_client(presented.secret, state.client, certificate)  # pure: no I/O
    if client is None:
        await ctx.throttle.failed("client", keys)
        raise certificate_refusal(state.client, certificate, presented.secret) or presented.rejected()
    await ctx.throttle.succeeded(keys, state.failures)
    if client.disabled or client.tenant_disabled:  # after the secret: tells only its holder
        raise InvalidClient("client is disabled")
    return client, state.refresh
