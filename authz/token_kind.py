"""Only access tokens authorize a request: a trusted issuer's other JWTs are refused by their type.

An OpenID provider signs its ID tokens (proof of a login *for a client*, OpenID Connect Core
§2), refresh tokens and access tokens with the same keys, the same `iss` and often an `aud`
an API accepts: only their type tells them apart (RFC 8725 §3.11, RFC 9068 §4). Recognised:
the JOSE header's `typ` (absent, `JWT` and `at+jwt` are access tokens; any other type is not)
and the claims providers mark their tokens with (`token_use` of AWS Cognito, `typ` of Keycloak).
Run once per token, at verification (a cache miss), never on a cache hit.
"""

from __future__ import annotations

from typing import Any, Mapping

from authz.errors import TokenError

# header `typ` values an access token may carry, lower case and without "application/"
# (RFC 7515 §4.1.9: a media type, compared case-insensitively, the prefix may be left out)
_ACCESS_TYPS = frozenset({"jwt", "at+jwt"})
_REFRESH_MARKERS = frozenset({"refresh", "refresh_token", "rt+jwt"})
# `id_token+jwt`/`id+jwt` (header typ), `token_use: id` (Cognito), `typ: ID` (Keycloak)
_ID_MARKERS = frozenset({"id", "id_token", "id+jwt", "id_token+jwt"})
_MARKED_CLAIMS = ("typ", "token_use", "token_type")


def _media_type(typ: str) -> str:
    typ = typ.lower()
    return typ[12:] if typ.startswith("application/") else typ


def _refuse_marked(mark: str) -> None:
    if mark in _REFRESH_MARKERS:
        raise TokenError("refresh tokens are not access tokens", "refresh_token")
    if mark in _ID_MARKERS:
        raise TokenError("an ID token is not an access token", "id_token")


def check_access_token(header: Mapping[str, Any], claims: Mapping[str, Any], require_at_jwt: bool) -> None:
    """Raise TokenError unless the token may be an access token; `require_at_jwt`: unless it
    is explicitly typed as one (RFC 9068 §2.1)."""
    for name in _MARKED_CLAIMS:
        value = claims.get(name)
        if type(value) is str:
            _refuse_marked(value.lower())
    typ = header.get("typ")
    if typ is None:
        media = None
    elif type(typ) is str:
        media = _media_type(typ)
        if media not in _ACCESS_TYPS:
            _refuse_marked(media)
            raise TokenError("token typ is not an access token type (at+jwt or JWT)", "wrong_typ")
    else:
        raise TokenError("token typ must be a string", "malformed")
    if require_at_jwt and media != "at+jwt":
        raise TokenError("token is not an access token (typ must be at+jwt)", "wrong_typ")
