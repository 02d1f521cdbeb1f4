"""Client authentication: HTTP Basic (client_secret_basic) or body (client_secret_post), never both.

Two pure steps around the endpoint's one store read: `presented` says which client a request
names and with which secret; `genuine` decides, over the login state read for that client,
whether it is that client. Neither does I/O: the endpoint reads and records."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.requests import Request

from sidecar.oauth.credentials import digest, secret_matches
from sidecar.oauth.errors import InvalidClient, InvalidRequest
from sidecar.oauth.params import Params
from sidecar.store.base import LoginState
from sidecar.store.records import Client

_NO_SUCH_CLIENT = digest("no such client")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="auth-sidecar"'}


@dataclass(frozen=True, slots=True)
class Presented:
    """The client credentials of one request."""

    client_id: str
    secret: str
    basic: bool  # sent as HTTP Basic: a failure answers with a Basic challenge

    @property
    def lookup_id(self) -> str | None:
        """The id to read from the store: none for an empty or absurdly long one (it cannot exist)."""
        return self.client_id if self.client_id and len(self.client_id) <= 256 else None


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error, and non-ASCII in the header
        raise InvalidClient("malformed Basic credentials", headers=_CHALLENGE)
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("malformed Basic credentials", headers=_CHALLENGE)
    return unquote_plus(client_id), unquote_plus(secret)


def presented(request: Request, params: Params, required: bool = True) -> Presented | None:
    """The credentials the request carries; None when it carries none and none are `required`."""
    basic = _basic(request)
    if basic and ("client_secret" in params or params.get("client_id", basic[0]) != basic[0]):
        raise InvalidRequest("use one client authentication method: HTTP Basic or the request body, not both")
    if basic:
        return Presented(basic[0], basic[1], True)
    if "client_id" in params or "client_secret" in params:
        return Presented(params.get("client_id", ""), params.get("client_secret", ""), False)
    if required:
        raise InvalidClient("client authentication is required", headers=_CHALLENGE)
    return None


def genuine(credentials: Presented, state: LoginState) -> Client | None:
    """The client, when the secret is its secret; None otherwise."""
    client = state.client
    # compare even when the client is unknown, so timing does not tell which case it is
    ok = secret_matches(credentials.secret, client.secret_digest if client else _NO_SUCH_CLIENT)
    return client if client is not None and ok and credentials.secret else None


def rejected(credentials: Presented) -> InvalidClient:
    return InvalidClient("client authentication failed", headers=_CHALLENGE if credentials.basic else {})
