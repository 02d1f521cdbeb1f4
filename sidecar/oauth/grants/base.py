"""What a grant is (an optional prefetch, a validate step and an issuing step, common here)
and what every grant may decide: the scopes (a request may narrow what it is allowed, never
widen it) and the access token's lifetime."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Iterable, TypeVar

from starlette.requests import Request

from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope
from sidecar.oauth.issuer import FAMILY_CLAIM, HELD_CLAIM, new_family, new_refresh_token
from sidecar.oauth.params import Params
from sidecar.store.base import RefreshKey
from sidecar.store.records import Client, RefreshRecord

TokenAnswer = dict[str, str | int]  # RFC 6749 §5.1
OFFLINE = "offline_access"
HELD_REFRESH = "urn:auth-sidecar:grant-type:held-refresh"
REFRESH_POLICIES = ("always", "offline", "never", "held")


@dataclass
class Validated:
    """Everything needed to issue tokens, decided by a grant's validate step."""

    subject: str
    client_id: str
    tenant: str | None
    scope: set[str]
    ttl: int
    org_id: str | None = None
    project_ids: tuple[str, ...] = ()
    with_refresh: bool = False
    held: bool = False  # the refresh token is kept by the service, bound to the access token's jti
    offline: bool = False  # an offline session: the longer family lifetime
    extra: dict[str, Any] = field(default_factory=dict)  # more access-token claims
    # the DPoP key the request proved it holds (sidecar/oauth/dpop.py): the access token is bound
    # to it (cnf.jkt, token_type DPoP); `refresh_jkt`: its refresh tokens too (a public client)
    jkt: str | None = None
    refresh_jkt: str | None = None
    # a public client's certificate (RFC 8705 §4): a new refresh family is bound to it
    refresh_x5t: str | None = None


V = TypeVar("V", bound=Validated)


class Grant(Generic[V]):
    """One grant type. The endpoint calls, in order: `prefetch` (before any I/O), then
    `validate` with the authenticated client and the prefetched record, then `issue` with
    what `validate` returned."""

    grant_type: ClassVar[str]
    client_required: ClassVar[bool] = True

    def prefetch(self, params: Params) -> RefreshKey | None:
        """A refresh record to read in the same store round trip as the client (None: none)."""
        return None

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> V:
        raise NotImplementedError

    async def issue(self, ctx: OAuthContext, v: V) -> TokenAnswer:
        family = new_family() if v.with_refresh else None
        extra = {**v.extra, HELD_CLAIM if v.held else FAMILY_CLAIM: family} if family else v.extra
        extra = bound_claims(v, extra)
        token = ctx.issuer.access_token(subject=v.subject, client_id=v.client_id, tenant=v.tenant, scope=v.scope,
                                        ttl=v.ttl, org_id=v.org_id, project_ids=v.project_ids, extra=extra)
        answer = token_answer(token.token, v)
        if v.with_refresh:
            lifetime = (ctx.settings.offline_refresh_token_ttl_seconds if v.offline or OFFLINE in v.scope
                        else ctx.settings.refresh_token_ttl_seconds)
            # a held family's token is never sent: its secret is the access token's jti (held_refresh.py)
            rt, record = new_refresh_token(client_id=v.client_id, tenant=v.tenant or "", subject=v.subject,
                                           scope=" ".join(sorted(v.scope)), family_expires_at=time.time() + lifetime,
                                           family=family, org_id=v.org_id, project_ids=v.project_ids,
                                           secret=token.claims["jti"] if v.held else None, jkt=v.refresh_jkt,
                                           x5t_s256=v.refresh_x5t)
            await ctx.store.put_refresh(record, (token.claims["jti"], token.claims["exp"]))
            if not v.held:
                answer["refresh_token"] = rt
        return answer


def token_answer(access_token: str, v: Validated) -> TokenAnswer:
    return {"access_token": access_token, "token_type": "DPoP" if v.jkt else "Bearer", "expires_in": v.ttl,
            "scope": " ".join(sorted(v.scope))}


def bound_claims(v: Validated, extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` with the DPoP confirmation (RFC 9449 §6.1) when the request proved a key."""
    # merged: a certificate binding (RFC 8705) may already be there
    return {**extra, "cnf": {**extra.get("cnf", {}), "jkt": v.jkt}} if v.jkt else extra


def access_ttl(ctx: OAuthContext, client: Client | None, params: Params) -> int:
    """The client's lifetime (or the default); a request may ask for a shorter one with
    `expires_in` (or `expiration`, Wazo's name), never longer: a longer ask gets the maximum."""
    limit = (client.access_token_ttl if client and client.access_token_ttl else None) \
        or ctx.settings.access_token_ttl_seconds
    limit = min(limit, ctx.settings.max_token_lifetime)  # signing keys are kept no longer
    for name in ("expires_in", "expiration"):
        asked = params.get(name)
        if asked is None or asked == "":
            continue
        if not asked.isdigit() or int(asked) < 1 or len(asked) > 12:
            raise InvalidRequest(f"{name} must be a positive integer (seconds)")
        limit = min(int(asked), limit)
    return limit


def refresh_for_login(client: Client, params: Params, scope: set[str]) -> dict[str, bool]:
    """Whether a login (password grant, Wazo token) starts a refresh family, by the client's
    `refresh_policy`: `always` (when the client has the refresh_token grant: the default,
    what every client did before the policy existed), `offline` (only when `offline_access`
    is granted or `access_type=offline` is asked), `never`, `held` (kept by the service)."""
    policy = client.refresh_policy
    offline = OFFLINE in scope or params.get("access_type") == "offline"
    if policy == "held":
        return {"with_refresh": HELD_REFRESH in client.grant_types, "held": True, "offline": offline}
    if policy == "never" or "refresh_token" not in client.grant_types:
        return {"with_refresh": False, "offline": offline}
    return {"with_refresh": policy == "always" or offline, "offline": offline}


def login_scopes(requested: str | None, *allowed: Iterable[str] | None) -> set[str]:
    """granted_scopes for a login: asking for no scope grants the allowed ones except
    `offline_access`, which only an explicit ask grants (a 30-day family nobody asked for)."""
    granted = granted_scopes(requested, *allowed)
    if parse_scope(requested) is None:
        granted.discard(OFFLINE)
    return granted


def parse_scope(scope: str | None) -> set[str] | None:
    """A `scope` parameter's words; None when it is absent or empty."""
    if scope is None or scope == "":
        return None
    words = scope.split(" ")
    if any(not w or any(c < "!" or c == '"' or c == "\\" or c > "~" for c in w) for w in words):
        raise InvalidScope("scope must be space-separated printable tokens (RFC 6749 §3.3)")
    return set(words)


def granted_scopes(requested: str | None, *allowed: Iterable[str] | None) -> set[str]:
    """The scopes granted: all allowed ones when none are requested, else the request if allowed."""
    permitted: set[str] | None = None
    for limit in allowed:
        if limit is not None:
            permitted = set(limit) if permitted is None else permitted & set(limit)
    permitted = permitted or set()
    wanted = parse_scope(requested)
    if wanted is None:
        return permitted
    extra = wanted - permitted
    if extra:
        raise InvalidScope(f"scope not allowed: {' '.join(sorted(extra))}")
    return wanted


_rotation_log = logging.getLogger("sidecar.oauth.refresh")


async def refuse_failed_rotation(ctx: OAuthContext, old: RefreshRecord, outcome: str, *, what: str,
                                 reuse: tuple[str, ...], reused: str, revoked: str) -> None:
    """A rotation that did not go through is refused; reuse (an outcome in `reuse`) revokes the
    whole family and its access tokens first. `what` names the token in the answers."""
    if outcome in reuse:
        ctx.metrics.reuse.inc()
        _rotation_log.warning(f"{what} reused: family revoked", extra={"family": old.family[:8],
                                                                       "client_id": old.client_id})
        await ctx.revoker.family(old.family, old.family_expires_at)
        raise InvalidGrant(reused)
    if outcome == "revoked":
        raise InvalidGrant(revoked)
    if outcome != "ok":
        raise InvalidGrant(f"{what} is {outcome}")
