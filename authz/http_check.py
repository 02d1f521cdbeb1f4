"""The HTTP face of ext_authz (Envoy `http_service`), a bare ASGI app under /ext_authz/.

It is mounted ahead of Starlette's routing and middleware: this is the fastest way in.
Envoy copies the allowed response headers upstream (overwriting) and removes those named
in `x-envoy-auth-headers-to-remove`.
"""

from __future__ import annotations

from typing import Any

from authz.decision import Decision
from authz.engine import Engine
from authz.request import AuthRequest

PREFIX = "/ext_authz"
REMOVE_HEADER = b"x-envoy-auth-headers-to-remove"


def encode(decision: Decision) -> tuple[dict[str, Any], bytes]:
    """The ASGI start message and body (a personal decision's without the token's own header)."""
    if decision.allowed:
        headers = [(k.encode(), v.encode()) for k, v in decision.headers]
        if decision.remove:
            headers.append((REMOVE_HEADER, ",".join(decision.remove).encode()))
        headers.append((b"content-length", b"0"))
        return {"type": "http.response.start", "status": 200, "headers": headers}, b""
    body = decision.body
    headers = [(b"www-authenticate", decision.www_authenticate.encode()),
               (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {"type": "http.response.start", "status": decision.status, "headers": headers}, body


class HttpCheckApp:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._user_header = engine.mutator.names.user.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"][len(PREFIX):] or "/"
        if scope.get("query_string"):
            path = f"{path}?{scope['query_string'].decode('latin-1')}"
        decision, identity = await self.engine.check(AuthRequest(headers, path, scope.get("method", "GET")), "http")
        wire = decision.wire_http
        if wire is None:
            wire = decision.wire_http = encode(decision)
        start = wire[0]
        if decision.personal and identity.subject:  # the token's own header, per response
            start = {"type": "http.response.start", "status": 200,
                     "headers": [*start["headers"], (self._user_header, identity.subject.encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": wire[1]})
