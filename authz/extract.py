"""Finding the token: Authorization: Bearer (or DPoP), X-Auth-Token; cookie and query parameter opt-in."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from authz.errors import TokenError
from authz.request import AuthRequest


class DpopToken(str):
    """A token sent with the DPoP scheme (RFC 9449 §7.1): the engine then checks its proof. The
    same text as the token: it hashes and compares as one."""

    __slots__ = ()


class TokenExtractor:
    def __init__(self, cookie: str | None = None, query_param: str | None = None) -> None:
        self._cookie = cookie
        self._query_param = query_param

    def extract(self, req: AuthRequest) -> str | None:
        """The token, None when there is none, TokenError when a credential is malformed."""
        headers = req.headers
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer":
                token = token.strip()
                if not token or " " in token:
                    raise TokenError("malformed Authorization header", "malformed")
                return token
            if scheme.lower() == "dpop":
                token = token.strip()
                if not token or " " in token:
                    raise TokenError("malformed Authorization header", "malformed")
                return DpopToken(token)
        token = headers.get("x-auth-token")
        if token:
            return token.strip()
        if self._cookie and "cookie" in headers:
            morsel = SimpleCookie(headers["cookie"]).get(self._cookie)
            if morsel is not None and morsel.value:
                return morsel.value
        if self._query_param and "?" in req.path:
            values = parse_qs(req.path.partition("?")[2]).get(self._query_param)
            if values and values[0]:
                return values[0]
        return None
