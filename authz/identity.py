"""Identity: the verified facts about a token's holder, from a JWT or an introspection answer."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from authz.errors import TokenError

_FORBIDDEN = re.compile("[\r\n\0]")
# RFC 9110 §5.5 field-value: visible ASCII, SP and HTAB inside, no whitespace at the ends.
# obs-text (bytes 0x80-0xFF) is refused too: a claim is text, its UTF-8 bytes would reach the
# upstream as obs-text, which most frameworks decode as Latin-1 (a different value).
_FIELD_VALUE = re.compile("[!-~]([\t -~]*[!-~])?")


def _check_field_value(name: str, text: str) -> None:
    if text.isascii() and text.isprintable() and text[0] != " " and text[-1] != " ":
        return  # visible ASCII and inner spaces: the common case, at C speed (no tab either)
    if _FIELD_VALUE.fullmatch(text) is None:
        raise TokenError(f"claim {name} is not a valid HTTP header value", "bad_claim")


def _clean(name: str, value: Any, shared: bool = True, header: bool = True) -> str | None:
    """A claim's text; `header`: it may be sent upstream as a header value, and must be one."""
    if value is None or value == "":
        return None
    if type(value) is str:
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise TokenError(f"claim {name} has the wrong type", "bad_claim")
    if header:
        _check_field_value(name, text)
    elif _FORBIDDEN.search(text):
        raise TokenError(f"claim {name} contains control characters", "bad_claim")
    # tenants, orgs, clients, issuers repeat across many cached tokens: share one copy (not
    # for `sub` and `jti`: unique values would only grow the interned table)
    return sys.intern(text) if shared and len(text) <= 128 else text


def _str_list(name: str, value: Any, header: bool = True) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise TokenError(f"claim {name} must be a list of strings", "bad_claim")
    return tuple(v for v in (_clean(name, item, header=header) for item in value) if v)


@dataclass(frozen=True, slots=True)
class Profile:
    """What many tokens have in common (tenant, org, projects, client, scopes, audience,
    issuer, actor): one shared copy per distinct combination, referenced by each identity."""
    tenant: str | None
    org_id: str | None
    project_ids: tuple[str, ...]
    client_id: str | None
    scopes: frozenset[str]
    scope_text: str
    audiences: tuple[str, ...]
    issuer: str | None
    # RFC 8693 §4.1 `act` of a delegated token: the immediate actor's `sub` (a header value) and
    # the whole claim as canonical JSON (the metadata). Actors repeat across many tokens: here,
    # not in each Identity, a delegated token costs a cached token no more memory
    actor: str | None = None
    act: str | None = None


@lru_cache(maxsize=4096)
def _profile(tenant: str | None, org_id: str | None, project_ids: tuple[str, ...], client_id: str | None,
             scope_text: str, audiences: tuple[str, ...], issuer: str | None, actor: str | None = None,
             act: str | None = None) -> Profile:
    return Profile(tenant, org_id, project_ids, client_id, frozenset(scope_text.split()), scope_text, audiences, issuer,
                   actor, act)


MAX_ACT_JSON = 2048  # an `act` chain longer than this is no delegation anyone meant


def _act(act: Any) -> tuple[str | None, str | None]:
    """(the immediate actor's sub, the claim as canonical JSON) of an `act` claim (RFC 8693 §4.1)."""
    if act is None:
        return None, None
    if not isinstance(act, dict):
        raise TokenError("claim act must be an object", "bad_claim")
    text = json.dumps(act, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_ACT_JSON:
        raise TokenError("claim act is too large", "bad_claim")
    return _clean("act.sub", act.get("sub")), sys.intern(text)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """RFC 7800 `cnf`: the key the token is bound to. `jkt`: a DPoP key's RFC 7638 thumbprint
    (RFC 9449 §6); `x5t`: a client certificate's SHA-256 thumbprint, `x5t#S256` (RFC 8705 §3.1).
    Both base64url without padding."""
    jkt: str | None = None
    x5t: str | None = None


def _confirmation(cnf: Any) -> Confirmation | None:
    if cnf is None:
        return None
    if not isinstance(cnf, dict):
        raise TokenError("claim cnf must be an object", "bad_claim")
    jkt, x5t = cnf.get("jkt"), cnf.get("x5t#S256")
    for name, value in (("cnf.jkt", jkt), ("cnf.x5t#S256", x5t)):
        if value is not None and (type(value) is not str or not 1 <= len(value) <= 128):
            raise TokenError(f"claim {name} must be a thumbprint", "bad_claim")
    if jkt is None and x5t is None:
        # a binding this server cannot check must not be treated as a bearer token
        raise TokenError("claim cnf names no confirmation method this server checks", "bad_claim")
    return Confirmation(jkt, x5t)


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified facts about one token: its own subject, id and times, and a shared profile
    (a cached token costs a few small objects, bench row `rss_100k`)."""
    profile: Profile
    subject: str | None
    jti: str | None
    expires_at: float
    issued_at: float | None = None
    cnf: Confirmation | None = None  # a sender-constrained token: checked on every request

    tenant = property(lambda self: self.profile.tenant)
    org_id = property(lambda self: self.profile.org_id)
    project_ids = property(lambda self: self.profile.project_ids)
    client_id = property(lambda self: self.profile.client_id)
    scopes = property(lambda self: self.profile.scopes)
    scope_text = property(lambda self: self.profile.scope_text)
    audiences = property(lambda self: self.profile.audiences)
    issuer = property(lambda self: self.profile.issuer)
    actor = property(lambda self: self.profile.actor)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], expires_at: float) -> "Identity":
        scope = claims.get("scope", "")
        if isinstance(scope, list):  # some issuers send a list ("scp" style)
            scope = " ".join(str(s) for s in scope)
        scope_text = " ".join((_clean("scope", scope, header=False) or "").split())
        if scope_text:  # checked once spaces are normalised: x-scopes carries the normalised text
            _check_field_value("scope", scope_text)
        project_ids = _str_list("project_ids", claims.get("project_ids"))
        if not project_ids and claims.get("project_id"):
            project_ids = _str_list("project_id", claims.get("project_id"))
        iat = claims.get("iat")
        profile = _profile(
            _clean("tenant", claims.get("tenant")),
            _clean("org_id", claims.get("org_id")),
            project_ids,
            _clean("client_id", claims.get("client_id") or claims.get("azp")),
            sys.intern(scope_text),
            _str_list("aud", claims.get("aud"), header=False),
            _clean("iss", claims.get("iss"), header=False),
            *_act(claims.get("act")),
        )
        return cls(
            profile=profile,
            subject=_clean("sub", claims.get("sub"), shared=False),
            jti=_clean("jti", claims.get("jti"), shared=False, header=False),
            expires_at=expires_at,
            issued_at=float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else None,
            cnf=_confirmation(claims.get("cnf")),
        )
