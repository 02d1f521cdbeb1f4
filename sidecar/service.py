"""The token service's HTTP routes, wired from the container (part of the composition root)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sidecar.admin.api import AdminApi
from sidecar.container import Container
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import Passwords
from sidecar.oauth.endpoint import TokenEndpoint
from sidecar.oauth.introspection import IntrospectionEndpoint, RevocationEndpoint, TokenInspector
from sidecar.oauth.metadata import openid_configuration, server_metadata
from sidecar.oauth.metrics import OAuthMetrics
from sidecar.oauth.throttle import LoginThrottle
from sidecar.oauth.credentials import RemoteCredentials, StoreCredentials
from sidecar.openapi import openapi_document
from sidecar.store.timed import TimedStore


def oauth_context(container: Container, registry: CollectorRegistry) -> OAuthContext:
    settings = container.settings
    passwords = Passwords(settings.password_hashing)
    metrics = OAuthMetrics(registry)
    store = TimedStore(container.store, metrics.store_latency)
    credentials = (RemoteCredentials(settings.credentials_service_url, container.http_client)
                   if settings.credentials_service_url else StoreCredentials(store, passwords))
    return OAuthContext(settings=settings, store=store, issuer=container.issuer, passwords=passwords,
                        credentials=credentials, metrics=metrics, revoker=container.revoker,
                        throttle=LoginThrottle(settings, store, metrics))


def routes(container: Container, registry: CollectorRegistry) -> list[Route]:
    ctx = oauth_context(container, registry)
    inspector = TokenInspector(ctx, container.engine.verifier)
    issuer = container.settings.issuer
    algs = sorted({k.alg for k in container.keyring.keys})

    async def as_metadata(_: Request) -> JSONResponse:
        return JSONResponse(server_metadata(issuer, algs))

    async def oidc(_: Request) -> JSONResponse:
        return JSONResponse(openid_configuration(issuer, algs))

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(openapi_document(issuer))

    found = [
        Route("/oauth/token", TokenEndpoint(ctx).handle, methods=["POST"]),
        Route("/oauth/introspect", IntrospectionEndpoint(ctx, inspector).handle, methods=["POST"]),
        Route("/oauth/revoke", RevocationEndpoint(ctx, inspector).handle, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", as_metadata),
        Route("/.well-known/openid-configuration", oidc),
        Route("/openapi.json", openapi),
    ]
    if container.settings.admin_token is not None:
        found += AdminApi(ctx, container.settings.admin_token.get_secret_value()).routes()
    return found
