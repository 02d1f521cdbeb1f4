"""grant_type=urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693): a client trades a
token it was given (the subject token: our own or a trusted issuer's access token) for one of
ours meant for another service (`audience`/`resource`, among the client's
`exchange_audiences`), with the same subject and at most the same scopes, naming who acts for
the subject in `act` (RFC 8693 §4.1): the actor token's `sub`, else the exchanging client.

The new token joins the subject token's refresh family (`fam`/`sid` of our own tokens), so
revoking that family revokes it through the family's access-token list, the one ext_authz's
revocation check already reads: nothing new on the Check path."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from authz.identity import Confirmation
from sidecar.oauth.certificates import presented_certificate
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.errors import InvalidGrant, InvalidRequest, InvalidTarget, UnauthorizedClient
from sidecar.oauth.grants.base import (Grant, TokenAnswer, Validated, access_ttl, bound_claims, granted_scopes,
                                       token_answer)
from sidecar.oauth.issuer import FAMILY_CLAIM, HELD_CLAIM
from sidecar.oauth.params import Params, every, required
from sidecar.oauth.presented import Presented
from sidecar.store.records import Client, RefreshRecord

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
TOKEN_TYPES = (ACCESS_TOKEN, JWT)  # what is accepted as subject and actor token, and issued
MAX_ACT_DEPTH = 8  # actors nested in `act`: a longer chain is refused, not truncated
MAX_TARGET = 512


@dataclass(kw_only=True)
class Exchanging(Validated):
    """A valid exchange: the audiences asked for, the new `act`, the family to join."""

    audiences: list[str]
    act: dict[str, Any]
    family: str | None
    # sender-constrained subject or actor tokens (their `cnf`, named by parameter) and the
    # certificate this request presented: `issue` checks the request holds their keys
    bound: tuple[tuple[str, Confirmation], ...] = ()
    certificate: str | None = None


class TokenExchangeGrant(Grant[Exchanging]):
    grant_type = TOKEN_EXCHANGE

    async def validate(self, ctx: OAuthContext, request: Request, params: Params, client: Client | None,
                       prefetched: RefreshRecord | None) -> Exchanging:
        assert client is not None  # client_required: the endpoint authenticated it
        if ctx.presented is None:
            raise InvalidRequest("token exchange is not available here")
        if client.token_endpoint_auth_method == "none":
            # whoever holds a user's token and a public client's id would reach every audience it may ask for
            raise UnauthorizedClient("a public client (token_endpoint_auth_method none) may not exchange tokens")
        asked_type = params.get("requested_token_type") or ACCESS_TOKEN
        if asked_type not in TOKEN_TYPES:
            raise InvalidRequest(f"requested_token_type {asked_type[:64]} is not supported; "
                                 f"supported: {' '.join(TOKEN_TYPES)}")
        subject_token = required(params, "subject_token")
        subject_type = required(params, "subject_token_type")
        if subject_type not in TOKEN_TYPES:
            raise InvalidRequest(f"subject_token_type {subject_type[:64]} is not supported; "
                                 f"supported: {' '.join(TOKEN_TYPES)}")
        actor_token, actor_type = params.get("actor_token", ""), params.get("actor_token_type", "")
        if bool(actor_token) != bool(actor_type):  # RFC 8693 §2.1: both or neither
            raise InvalidRequest("actor_token and actor_token_type go together")
        if actor_type and actor_type not in TOKEN_TYPES:
            raise InvalidRequest(f"actor_token_type {actor_type[:64]} is not supported; "
                                 f"supported: {' '.join(TOKEN_TYPES)}")
        audiences = _targets(params, client)

        subject = await ctx.presented.verify(subject_token, "subject_token", jwt_only=subject_type == JWT)
        who = subject.identity
        if not who.subject:
            raise InvalidGrant("subject_token names no subject")
        if who.tenant and who.tenant != client.tenant:
            raise InvalidGrant("subject_token belongs to another tenant than this client")
        bound = [("subject_token", who.cnf)] if who.cnf is not None else []
        if actor_token:
            actor = await ctx.presented.verify(actor_token, "actor_token", jwt_only=actor_type == JWT)
            if not actor.identity.subject:
                raise InvalidGrant("actor_token names no subject")
            if actor.identity.tenant and actor.identity.tenant != client.tenant:
                raise InvalidGrant("actor_token belongs to another tenant than this client")
            if actor.identity.cnf is not None:
                bound.append(("actor_token", actor.identity.cnf))
            actor_sub, actor_iss = actor.identity.subject, actor.identity.issuer
        else:
            actor_sub, actor_iss = client.client_id, ctx.settings.issuer
        _may_act(subject.claims.get("may_act"), actor_sub, actor_iss)

        scope = granted_scopes(params.get("scope"), who.scopes, client.scopes)
        ttl = min(access_ttl(ctx, client, params), int(_expires(subject) - time.time()))
        if ttl < 1:
            raise InvalidGrant("subject_token has expired")
        act: dict[str, Any] = {"sub": actor_sub}
        if actor_iss and actor_iss != ctx.settings.issuer:
            act["iss"] = actor_iss
        previous = subject.claims.get("act")
        if isinstance(previous, dict):  # RFC 8693 §4.1: the new actor outermost, the earlier ones inside
            act["act"] = previous
            if _depth(act) > MAX_ACT_DEPTH:
                raise InvalidGrant(f"delegation chain is longer than {MAX_ACT_DEPTH} actors")
        return Exchanging(subject=who.subject, client_id=client.client_id, tenant=who.tenant, scope=scope, ttl=ttl,
                          org_id=who.org_id, project_ids=who.project_ids, audiences=audiences, act=act,
                          family=_family(ctx, subject), bound=tuple(bound),
                          certificate=_certificate(ctx, request) if bound else None)

    async def issue(self, ctx: OAuthContext, v: Exchanging) -> TokenAnswer:
        _holder_proven(v)
        # bound to the exchanging client's certificate or DPoP key when it proved one (endpoint.py),
        # and to the subject token's certificate: what was sender-constrained stays so
        extra: dict[str, Any] = bound_claims(v, {**v.extra, "act": v.act})
        x5t = next((cnf.x5t for what, cnf in v.bound if what == "subject_token" and cnf.x5t), None)
        if x5t is not None:
            extra["cnf"] = {**extra.get("cnf", {}), "x5t#S256": x5t}
        if v.family:
            extra[FAMILY_CLAIM] = v.family
        token = ctx.issuer.access_token(subject=v.subject, client_id=v.client_id, tenant=v.tenant, scope=v.scope,
                                        ttl=v.ttl, org_id=v.org_id, project_ids=v.project_ids, extra=extra,
                                        audience=v.audiences[0] if len(v.audiences) == 1 else v.audiences)
        if v.family and not await ctx.store.join_family(v.family, (token.claims["jti"], token.claims["exp"])):
            raise InvalidGrant("subject_token has been revoked")  # its family, while this exchange ran
        answer = token_answer(token.token, v)
        answer["issued_token_type"] = ACCESS_TOKEN
        return answer


def _certificate(ctx: OAuthContext, request: Request) -> str | None:
    presented = presented_certificate(request, ctx.settings.trusted_proxy_hops)
    return presented.thumbprint if presented is not None else None


def _holder_proven(v: Exchanging) -> None:
    """A sender-constrained token is evidence only from its holder (RFC 9449 §7, RFC 8705 §3):
    a DPoP-bound one needs this request's DPoP proof signed by its key (`v.jkt`, checked by the
    endpoint), a certificate-bound one the same client certificate. Else whoever stole it could
    trade it for a token bound to nothing, or to a key of their own."""
    for what, cnf in v.bound:
        if cnf.jkt is not None and (v.jkt is None or not hmac.compare_digest(v.jkt, cnf.jkt)):
            raise InvalidGrant(f"{what} is DPoP-bound: send a DPoP proof signed with its key")
        if cnf.x5t is not None and (v.certificate is None or not hmac.compare_digest(v.certificate, cnf.x5t)):
            raise InvalidGrant(f"{what} is bound to a client certificate this request did not present")


def _targets(params: Params, client: Client) -> list[str]:
    """The audiences asked for (`audience` and `resource`, each may repeat), all of them among
    the client's `exchange_audiences`; none asked: the client's only one, if it has one."""
    asked = list(dict.fromkeys(every(params, "audience") + every(params, "resource")))
    if not asked:
        if len(client.exchange_audiences) == 1:
            return [client.exchange_audiences[0]]
        raise InvalidRequest("missing parameter audience (or resource)")
    for target in asked:
        if len(target) > MAX_TARGET or not target.isprintable():
            raise InvalidRequest("audience and resource must be printable and at most 512 characters")
    refused = [t for t in asked if t not in client.exchange_audiences]
    if refused:
        raise InvalidTarget(f"this client may not ask for audience {refused[0][:64]}")
    return asked


def _may_act(may_act: Any, actor_sub: str, actor_iss: str | None) -> None:
    """RFC 8693 §4.4: a subject token naming who may act for it admits no one else."""
    if may_act is None:
        return
    if not isinstance(may_act, dict) or not isinstance(may_act.get("sub"), str):
        raise InvalidGrant("subject_token has a may_act claim this server cannot read")
    if may_act["sub"] != actor_sub or ("iss" in may_act and may_act["iss"] != actor_iss):
        raise InvalidGrant("subject_token's may_act does not name this actor")


def _expires(subject: Presented) -> float:
    """When the subject token expires: its `exp` (the identity's adds the leeway)."""
    exp = subject.claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return subject.identity.expires_at


def _family(ctx: OAuthContext, subject: Presented) -> str | None:
    """The refresh family of one of our own tokens (an exchanged one keeps its subject's)."""
    if subject.identity.issuer != ctx.settings.issuer:
        return None  # another issuer's claims name no family of ours
    family = subject.claims.get(FAMILY_CLAIM) or subject.claims.get(HELD_CLAIM)
    return family if isinstance(family, str) and family else None


def _depth(act: Any) -> int:
    depth = 0
    while isinstance(act, dict):
        depth, act = depth + 1, act.get("act")
    return depth
