"""The HTTP face: Starlette for the token service, admin API and probes; /ext_authz/ goes
straight to the bare ext_authz adapter, ahead of routing and middleware."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authz.keys import KeyRing
from transport.http.check import PREFIX, HttpCheckApp


def build_app(check: HttpCheckApp, ready: Callable[[], Awaitable[bool]], registry: CollectorRegistry,
              keyring: KeyRing, routes: list[Route]) -> Any:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if await ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def jwks(_: Request) -> Response:
        return JSONResponse(keyring.jwks(), headers={"cache-control": "public, max-age=300"})

    app = Starlette(routes=[
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/.well-known/jwks.json", jwks), *routes,
    ])
    prefix_slash = PREFIX + "/"

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["path"] == PREFIX or scope["path"].startswith(prefix_slash)):
            await check(scope, receive, send)
        else:
            await app(scope, receive, send)
    return dispatch
