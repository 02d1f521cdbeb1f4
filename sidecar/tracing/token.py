"""The token request span: one per POST /oauth/token, with the grant type, the authenticated
client's id and the outcome's RFC 6749 error code. sidecar/oauth/endpoint.py notes the grant
type and client id on `request.state`; nothing from the body or the credentials is read here."""

from __future__ import annotations

import json
from typing import Awaitable, Callable

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import Request
from starlette.responses import Response

SPAN = "oauth.token"
_PROPAGATOR = TraceContextTextMapPropagator()
Handler = Callable[[Request], Awaitable[Response]]


def traced_token(handle: Handler, tracer: Tracer) -> Handler:
    async def token(request: Request) -> Response:
        parent = _PROPAGATOR.extract(request.headers)
        with tracer.start_as_current_span(SPAN, context=parent, kind=SpanKind.SERVER,
                                          attributes={"http.route": "/oauth/token"}) as span:
            response = await handle(request)
            state = request.state
            grant_type, client_id = getattr(state, "grant_type", None), getattr(state, "client_id", None)
            if grant_type:
                span.set_attribute("oauth.grant_type", grant_type)
            if client_id:
                span.set_attribute("oauth.client_id", client_id)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("oauth.error", _error(response))
                if response.status_code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            return response
    return token


def _error(response: Response) -> str:
    """The `error` code of our own RFC 6749 error body."""
    try:
        return str(json.loads(response.body)["error"])
    except (ValueError, KeyError, TypeError):
        return "unknown"
