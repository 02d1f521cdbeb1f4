"""What a grant validates to, and the common issuing step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sidecar.oauth import refresh, scopes
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidRequest
from sidecar.store.records import Client


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
    extra: dict[str, Any] = field(default_factory=dict)
    source: Any = None  # what validation looked up and issuing needs (the refresh record)


class Grant:
    grant_type = ""
    client_required = True

    def lookup(self, params: dict[str, str]) -> tuple[str, str] | None:
        """The refresh record (family, digest) to read with the client, in one store round trip."""
        return None

    async def validate(self, ctx: OAuthContext, request: Request, params: dict[str, str],
                       client: Client | None, looked_up: Any = None) -> Validated:
        raise NotImplementedError

    async def issue(self, ctx: OAuthContext, v: Validated) -> dict[str, Any]:
        token = ctx.issuer.access_token(subject=v.subject, client_id=v.client_id, tenant=v.tenant, scope=v.scope,
                                        ttl=v.ttl, org_id=v.org_id, project_ids=v.project_ids, extra=v.extra)
        answer = token_answer(token.token, v)
        if v.with_refresh:
            lifetime = (ctx.settings.offline_refresh_token_ttl_seconds if scopes.OFFLINE in v.scope
                        else ctx.settings.refresh_token_ttl_seconds)
            rt, record = refresh.new(client_id=v.client_id, tenant=v.tenant or "", subject=v.subject,
                                     scope=" ".join(sorted(v.scope)), family_expires_at=time.time() + lifetime,
                                     org_id=v.org_id, project_ids=v.project_ids)
            await ctx.store.put_refresh(record, (token.claims["jti"], token.claims["exp"]))
            answer["refresh_token"] = rt
        return answer


def token_answer(access_token: str, v: Validated) -> dict[str, Any]:
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": v.ttl,
            "scope": " ".join(sorted(v.scope))}


def access_ttl(ctx: OAuthContext, client: Client | None, params: dict[str, str]) -> int:
    """The client's lifetime (or the default); a request may ask for a shorter one, never longer."""
    limit = (client.access_token_ttl if client and client.access_token_ttl else None) \
        or ctx.settings.access_token_ttl_seconds
    limit = min(limit, ctx.settings.max_token_lifetime)  # signing keys are kept no longer
    asked = params.get("expires_in")
    if asked is None or asked == "":
        return limit
    if not asked.isdigit() or int(asked) < 1:
        raise InvalidRequest("expires_in must be a positive integer")
    return min(int(asked), limit)
