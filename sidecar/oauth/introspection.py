"""RFC 7662 introspection and RFC 7009 revocation endpoints (callers authenticate as a client),
and the own-store introspector that backs ext_authz for opaque tokens."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from authz import jose
from authz.errors import NotMine, TokenError
from authz.identity import Identity
from authz.verify import JwtVerifier
from sidecar.oauth import responses
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.endpoint import authenticate, guarded
from sidecar.oauth.errors import InvalidClient, UnsupportedTokenType
from sidecar.oauth.grants.held_refresh import held_claims
from sidecar.oauth.issuer import HELD_CLAIM, looks_like_refresh_token, parse_refresh_token
from sidecar.oauth.params import read_params, required
from sidecar.store.records import Client, RefreshRecord


class StoreIntrospector:
    """ext_authz's view of our opaque tokens: they are all refresh tokens, never accepted."""

    async def introspect(self, token: str) -> Identity:
        if looks_like_refresh_token(token):
            raise TokenError("refresh tokens are not access tokens", "refresh_token")
        raise NotMine()


class TokenInspector:
    """Finds out what a token is: our access JWT or our refresh token."""

    def __init__(self, ctx: OAuthContext, verifier: JwtVerifier) -> None:
        self.ctx = ctx
        self.verifier = verifier

    async def access(self, token: str) -> dict[str, Any] | None:
        if not jose.looks_like_jwt(token):
            return None
        try:
            identity = await self.verifier.verify(token)
        except TokenError:
            return None
        if identity.issuer != self.ctx.settings.issuer:
            return None
        claims = jose.parse(token).claims
        if await self.ctx.store.is_revoked(identity.jti, identity.subject, identity.client_id, identity.issued_at):
            return None
        return claims

    async def refresh(self, token: str) -> RefreshRecord | None:
        presented = parse_refresh_token(token)
        if presented is None:
            return None
        record = await self.ctx.store.get_refresh(*presented.key())
        if record is None or record.used or record.held or record.family_expires_at <= time.time():
            return None  # a held token is never handed out: it is no token anyone can present
        if await self.ctx.store.family_revoked(record.family):
            return None
        if await self.ctx.store.is_revoked(None, record.subject, record.client_id, record.created):
            return None
        return record


class _TokenRequestEndpoint:
    """Both RFC 7009 and RFC 7662 take `token` (+ optional hint) from an authenticated client."""

    def __init__(self, ctx: OAuthContext, inspector: TokenInspector) -> None:
        self.ctx, self.inspector = ctx, inspector

    async def handle(self, request: Request) -> Response:
        async def work() -> Response:
            params = await read_params(request, self.ctx.settings.max_body_bytes)
            caller, _ = await authenticate(self.ctx, request, params)
            assert caller is not None  # required: authenticate raised otherwise
            token = required(params, "token")
            if params.get("token_type_hint", "") not in ("", "access_token", "refresh_token"):
                raise UnsupportedTokenType(f"token_type_hint {params['token_type_hint'][:32]} is not supported")
            return await self.answer(caller, token)
        return await guarded(self.ctx, work)

    async def answer(self, caller: Client, token: str) -> Response:
        raise NotImplementedError


class IntrospectionEndpoint(_TokenRequestEndpoint):
    async def answer(self, caller: Client, token: str) -> Response:
        if caller.token_endpoint_auth_method == "none":
            # its client_id is public: anyone could read any token of the tenant (RFC 7662 §4)
            raise InvalidClient("a public client (token_endpoint_auth_method none) may not introspect tokens")
        claims = await self.inspector.access(token)
        if claims is not None and claims.get("tenant") in (None, caller.tenant):
            return responses.ok({"active": True, "token_type": "access_token", **claims})
        record = await self.inspector.refresh(token)
        if record is not None and record.tenant == caller.tenant:
            return responses.ok({"active": True, "token_type": "refresh_token", "client_id": record.client_id,
                                 "sub": record.subject, "scope": record.scope, "tenant": record.tenant,
                                 "exp": int(record.family_expires_at), "iat": int(record.created),
                                 "iss": self.ctx.settings.issuer})
        return responses.ok({"active": False})


class RevocationEndpoint(_TokenRequestEndpoint):
    async def answer(self, caller: Client, token: str) -> Response:
        held = await held_claims(self.ctx, token)  # a held session's access token: logout ends its family
        if held is not None and _owned(caller, held.get("client_id")):
            s = self.ctx.settings
            until = time.time() + max(s.refresh_token_ttl_seconds, s.offline_refresh_token_ttl_seconds)
            await self.ctx.revoker.family(held[HELD_CLAIM], until)
            await self.ctx.revoker.access_tokens([(str(held.get("jti")), float(held.get("exp", 0)))])
            return Response(status_code=200, headers=responses.NO_STORE)
        claims = await self.inspector.access(token)
        if claims is not None and _owned(caller, claims.get("client_id")):
            await self.ctx.revoker.access_tokens([(claims["jti"], float(claims["exp"]))])
        else:
            record = await self.inspector.refresh(token)
            if record is not None and _owned(caller, record.client_id):
                await self.ctx.revoker.family(record.family, record.family_expires_at)
        # RFC 7009 §2.2: unknown, invalid or foreign tokens also get 200
        return Response(status_code=200, headers=responses.NO_STORE)


def _owned(caller: Client, client_id: Any) -> bool:
    return caller.client_id == client_id
