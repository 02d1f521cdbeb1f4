"""Client authentication: HTTP Basic (client_secret_basic) or body (client_secret_post), never both."""

from __future__ import annotations

import base64
from urllib.parse import unquote_plus

from starlette.requests import Request

from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import digest, secret_matches
from sidecar.oauth.errors import InvalidClient, InvalidRequest
from sidecar.store.records import Client, RefreshRecord

_NO_SUCH_CLIENT = digest("no such client")


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error, and non-ASCII in the header
        raise InvalidClient("malformed Basic credentials", headers={"WWW-Authenticate": 'Basic realm="auth-sidecar"'})
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("malformed Basic credentials", headers={"WWW-Authenticate": 'Basic realm="auth-sidecar"'})
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate(ctx: OAuthContext, request: Request, params: dict[str, str], required: bool = True) -> Client | None:
    return (await authenticate_reading(ctx, request, params, required))[0]


async def authenticate_reading(ctx: OAuthContext, request: Request, params: dict[str, str], required: bool = True,
                               refresh: tuple[str, str] | None = None) -> tuple[Client | None, RefreshRecord | None]:
    """`authenticate`, also reading the (family, digest) refresh record in the same store
    round trip: the refresh grant's lookup, before we know the client is genuine."""
    basic = _basic(request)
    if basic and ("client_secret" in params or params.get("client_id", basic[0]) != basic[0]):
        raise InvalidRequest("use one client authentication method: HTTP Basic or the request body, not both")
    if basic:
        client_id, secret = basic
    elif "client_id" in params or "client_secret" in params:
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    elif required:
        raise InvalidClient("client authentication is required",
                            headers={"WWW-Authenticate": 'Basic realm="auth-sidecar"'})
    else:
        return None, None
    challenge = {"WWW-Authenticate": 'Basic realm="auth-sidecar"'} if basic else {}
    keys = ctx.throttle.keys(request, "client", client_id)
    state = await ctx.store.login_state(client_id if client_id and len(client_id) <= 256 else None, keys, refresh)
    client = state.client
    ctx.throttle.refuse_if_blocked("client", state.blocked_until, InvalidClient)
    # compare even when the client is unknown, so timing does not tell which case it is
    ok = secret_matches(secret, client.secret_digest if client else _NO_SUCH_CLIENT)
    if client is None or not ok or not secret:
        await ctx.throttle.failed("client", keys)
        raise InvalidClient("client authentication failed", headers=challenge)
    await ctx.throttle.succeeded(keys, state.failures)
    if client.disabled or await tenant_disabled(ctx, client.tenant):  # after the secret: tells only its holder
        raise InvalidClient("client is disabled", headers=challenge)
    return client, state.refresh


async def tenant_disabled(ctx: OAuthContext, tenant_id: str) -> bool:
    tenant = await ctx.store.get_tenant(tenant_id)
    return tenant is not None and tenant.disabled
