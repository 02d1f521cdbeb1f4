"""The token service's HTTP routes over its parts (built by sidecar/container.py)."""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authz.keys import KeyRing
from authz.verify import JwtVerifier
from sidecar.admin.api import AdminApi
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.endpoint import TokenEndpoint
from sidecar.oauth.introspection import IntrospectionEndpoint, RevocationEndpoint, TokenInspector
from sidecar.oauth.metadata import openid_configuration, server_metadata
from sidecar.openapi import openapi_document


def routes(ctx: OAuthContext, verifier: JwtVerifier, keyring: KeyRing,
           token_wrapper: Callable[[Any], Any] | None = None) -> list[Route]:
    """`token_wrapper`: wraps the token endpoint's handler (the token request span)."""
    inspector = TokenInspector(ctx, verifier)
    issuer = ctx.settings.issuer
    algs = sorted({k.alg for k in keyring.keys})

    async def as_metadata(_: Request) -> JSONResponse:
        return JSONResponse(server_metadata(issuer, algs, ctx.settings.dpop.algs))

    async def oidc(_: Request) -> JSONResponse:
        return JSONResponse(openid_configuration(issuer, algs, ctx.settings.dpop.algs))

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(openapi_document(issuer))

    token_handle = TokenEndpoint(ctx).handle
    if token_wrapper is not None:
        token_handle = token_wrapper(token_handle)
    found = [
        Route("/oauth/token", token_handle, methods=["POST"]),
        Route("/oauth/introspect", IntrospectionEndpoint(ctx, inspector).handle, methods=["POST"]),
        Route("/oauth/revoke", RevocationEndpoint(ctx, inspector).handle, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", as_metadata),
        Route("/.well-known/openid-configuration", oidc),
        Route("/openapi.json", openapi),
    ]
    if ctx.settings.wazo_api.enabled:
        from sidecar.oauth.wazo import WazoApi
        found += WazoApi(ctx, inspector).routes()
    if ctx.settings.admin_token is not None:
        found += AdminApi(ctx, ctx.settings.admin_token.get_secret_value()).routes()
    return found
