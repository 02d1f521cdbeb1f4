"""One ASGI app for every /admin/ path: the admin routes matched in order, and a JSON answer
for what none of them takes (404 for an unknown path, 405 with `Allow` naming every method
the path has), so every admin answer is the JSON the OpenAPI document promises."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send


class AdminRouter:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed: list[str] = []
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL:
                allowed += [m for m in sorted(route.methods or ()) if m not in allowed]
        if allowed:
            answer = JSONResponse({"error": "method_not_allowed",
                                   "error_description": f"{scope['method']} is not allowed here; use {', '.join(allowed)}"},
                                  status_code=405, headers={"Allow": ", ".join(allowed)})
        else:
            answer = JSONResponse({"error": "not_found", "error_description": f"no admin API at {scope['path']}"},
                                  status_code=404)
        await answer(scope, receive, send)


class AdminMount(BaseRoute):
    """Every path under /admin/, whatever its characters (a path convertor's `.*` stops at a
    newline, and the app's plain-text 404 would answer)."""

    def __init__(self, app: AdminRouter) -> None:
        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith("/admin/"):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: object):  # type: ignore[override]
        raise NoMatchFound(name, path_params)


def mount(routes: list[Route]) -> BaseRoute:
    return AdminMount(AdminRouter(routes))
