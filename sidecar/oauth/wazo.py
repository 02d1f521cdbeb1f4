"""The Wazo-style token API under /api/auth/0.1 (seed 004): a thin front over the same grants,
tokens and store as /oauth/token. No second token format: `token` is the same signed access
token ext_authz checks (in `X-Auth-Token` too), `refresh_token` the same rotating refresh token.

- POST /token with HTTP Basic `username:password` and JSON {expiration?, access_type?
  (online|offline), client_id?}: a login for the client named by `client_id` (else
  `wazo_api.default_client_id`); its tenant, scopes, lifetime and refresh policy apply. A
  refresh token only with `access_type: offline`, which needs a `client_id`.
- POST /token without Basic, JSON {refresh_token, client_id, expiration?}: the refresh grant,
  for that client only.
- GET|HEAD /token/{token}: 200 (with the token's data) / 204 when valid, 404 when not;
  DELETE /token/{token}: revoked (a held session's token ends its family).

As in Wazo, `client_id` here names the application, it is not authenticated: the user's
password (or the refresh token) is the credential."""

from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authz import jose
from sidecar.oauth import responses
from sidecar.oauth.certificates import binds_tokens
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.endpoint import guarded
from sidecar.oauth.errors import InvalidClient, InvalidGrant, InvalidRequest, UnauthorizedClient
from sidecar.oauth.grants.base import Validated, access_ttl, login_scopes, refresh_for_login
from sidecar.oauth.grants.password import PasswordGrant
from sidecar.oauth.grants.refresh_token import RefreshTokenGrant
from sidecar.oauth.introspection import TokenInspector
from sidecar.oauth.issuer import HELD_CLAIM, parse_refresh_token
from sidecar.oauth.params import read_params, required
from sidecar.store.records import Client

PREFIX = "/api/auth/0.1"
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="auth-sidecar"'}


class WazoApi:
    def __init__(self, ctx: OAuthContext, inspector: TokenInspector) -> None:
        self.ctx, self.inspector = ctx, inspector
        self._login, self._refresh = PasswordGrant(), RefreshTokenGrant()

    def routes(self) -> list[Route]:
        return [Route(PREFIX + "/token", self.create, methods=["POST"]),
                Route(PREFIX + "/token/{token}", self.token, methods=["GET", "HEAD", "DELETE"])]

    # --- POST /token
    async def create(self, request: Request) -> Response:
        return await guarded(self.ctx, lambda: self._create(request))

    async def _create(self, request: Request) -> Response:
        ctx = self.ctx
        params = await read_params(request, ctx.settings.max_body_bytes)
        access_type = params.get("access_type", "online")
        if access_type not in ("online", "offline"):
            raise InvalidRequest("access_type must be online or offline")
        user = _basic_user(request)
        if user is None:
            return await self._by_refresh(request, params)
        if access_type == "offline" and not params.get("client_id"):
            raise InvalidRequest("access_type offline requires a client_id")
        client = await self._client(params.get("client_id") or ctx.settings.wazo_api.default_client_id)
        tenant = request.headers.get("wazo-tenant") or client.tenant
        if tenant != client.tenant:  # the client decides the tenant, as at /oauth/token
            raise InvalidRequest("Wazo-Tenant is not the tenant of this client_id")
        username, password = user
        keys = ctx.throttle.keys(request, "user", f"{tenant}:{username}")
        failures = await ctx.throttle.check("user", keys, InvalidClient)
        found = await ctx.credentials.check(tenant, username, password)
        if found is None:
            await ctx.throttle.failed("user", keys)
            raise InvalidClient("authentication failed: invalid username or password", headers=_CHALLENGE)
        await ctx.throttle.succeeded(keys, failures)
        granted = login_scopes(None, client.scopes, found.scopes)
        refresh = refresh_for_login(client, {"access_type": access_type}, granted)
        if access_type != "offline":  # Wazo: a refresh token only when asked for
            refresh["with_refresh"] = False
        v = Validated(subject=found.subject, client_id=client.client_id, tenant=tenant, scope=granted,
                      ttl=access_ttl(ctx, client, params), org_id=found.org_id, project_ids=found.project_ids,
                      **refresh)
        answer = await self._login.issue(ctx, v)
        ctx.metrics.issued.labels("wazo", client.client_id).inc()
        return _data(answer)

    async def _by_refresh(self, request: Request, params: dict[str, str]) -> Response:
        ctx = self.ctx
        token = params.get("refresh_token")
        if not token:
            raise InvalidClient("send username:password as HTTP Basic, or a refresh_token", headers=_CHALLENGE)
        client = await self._client(required(params, "client_id"))
        if "refresh_token" not in client.grant_types:
            raise UnauthorizedClient("this client_id may not use refresh tokens")
        presented = parse_refresh_token(token)
        record = await ctx.store.get_refresh(*presented.key()) if presented else None
        if record is not None and record.client_id != client.client_id:
            raise InvalidGrant("refresh token was issued to another client_id")
        v = await self._refresh.validate(ctx, request, {k: params[k] for k in ("refresh_token", "expiration")
                                                        if k in params}, client, record)
        answer = await self._refresh.issue(ctx, v)
        ctx.metrics.issued.labels("wazo_refresh", client.client_id).inc()
        return _data(answer)

    async def _client(self, client_id: str | None) -> Client:
        if not client_id:
            raise InvalidRequest("client_id is required (no wazo_api.default_client_id is set)")
        client = await self.ctx.store.get_client(client_id[:256])
        if client is None or client.service_user_id or "password" not in client.grant_types:
            raise InvalidRequest(f"client_id {client_id[:64]} is not a client of this service")
        if client.disabled or client.tenant_disabled:
            raise InvalidClient("client is disabled", headers=_CHALLENGE)
        if client.dpop_bound_access_tokens or binds_tokens(client):
            # this API neither authenticates the client nor binds tokens: its tokens and
            # refresh tokens would be plain bearer ones, and a certificate client's refresh
            # token would work without its certificate
            raise UnauthorizedClient(f"client_id {client_id[:64]} gets sender-constrained tokens (DPoP or "
                                     "certificate-bound): use /oauth/token")
        return client

    # --- GET|HEAD|DELETE /token/{token}
    async def token(self, request: Request) -> Response:
        return await guarded(self.ctx, lambda: self._token(request))

    async def _token(self, request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "DELETE":
            await self._revoke(token)
            return Response(status_code=200, headers=responses.NO_STORE)
        claims = await self.inspector.access(token)
        if claims is None:
            if request.method == "HEAD":
                return Response(status_code=404, headers=responses.NO_STORE)
            return JSONResponse({"error": "not_found", "error_description": "no such valid token"},
                                status_code=404, headers=responses.NO_STORE)
        if request.method == "HEAD":
            return Response(status_code=204, headers=responses.NO_STORE)
        return responses.ok({"data": _token_data(token, claims)})

    async def _revoke(self, token: str) -> None:
        """Possession of a token is enough to end it (as in Wazo)."""
        claims = await self.inspector.access(token)
        if claims is not None:
            if isinstance(claims.get(HELD_CLAIM), str):
                s = self.ctx.settings
                await self.ctx.revoker.family(claims[HELD_CLAIM], time.time() + max(
                    s.refresh_token_ttl_seconds, s.offline_refresh_token_ttl_seconds))
            await self.ctx.revoker.access_tokens([(claims["jti"], float(claims["exp"]))])
            return
        record = await self.inspector.refresh(token)
        if record is not None:
            await self.ctx.revoker.family(record.family, record.family_expires_at)


def _basic_user(request: Request) -> tuple[str, str] | None:
    """HTTP Basic `username:password` as curl -u sends it (no form-decoding: a `+` stays a `+`)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidClient("malformed Basic credentials", headers=_CHALLENGE) from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise InvalidClient("malformed Basic credentials", headers=_CHALLENGE)
    return username, password


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _token_data(token: str, claims: dict[str, Any]) -> dict[str, Any]:
    """Wazo's token object over our access token's claims (times in UTC)."""
    exp, iat = float(claims["exp"]), float(claims["iat"])
    return {"token": token, "expires_at": _iso(exp), "utc_expires_at": _iso(exp), "issued_at": _iso(iat),
            "utc_issued_at": _iso(iat), "auth_id": claims.get("sub"), "session_uuid": claims.get(HELD_CLAIM)
            or claims.get("jti"), "client_id": claims.get("client_id"),
            "metadata": {"tenant_uuid": claims.get("tenant"), "org_id": claims.get("org_id"),
                         "project_ids": claims.get("project_ids", []), "auth_id": claims.get("sub")}}


def _data(answer: dict[str, Any]) -> Response:
    token = str(answer["access_token"])
    data = _token_data(token, jose.parse(token).claims)
    if "refresh_token" in answer:
        data["refresh_token"] = answer["refresh_token"]
    return responses.ok({"data": data})
