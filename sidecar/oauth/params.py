"""Reading a token-endpoint request: its parameters (form, RFC 6749, or JSON; size-limited; none
repeated) and the client credentials it presents: HTTP Basic (client_secret_basic) or the body
(client_secret_post), never both. Reading only: whether the client is genuine is decided over
the store's login state (credentials.genuine_client)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request

from sidecar.bodies import BodyError, parse_json, read_capped
from sidecar.oauth.errors import InvalidClient, InvalidRequest, OAuthError

# RFC 8693 §2.1: `audience` and `resource` may be given more than once (read with `every`)
REPEATABLE = frozenset({"audience", "resource"})


class Params(dict[str, str]):
    """A request's parameters, each given once (the first value, for those in REPEATABLE) and
    every value of a repeated REPEATABLE one in `repeated`."""

    __slots__ = ("repeated",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.repeated: dict[str, list[str]] = {}


_CHALLENGE = {"WWW-Authenticate": 'Basic realm="auth-sidecar"'}
# RFC 6749 §2.3.1 / §4.3.2: parameters and credentials go in the body; a URL ends up in proxy
# and access logs, so a request carrying a query is refused outright (never read, never echoed)
QUERY_REFUSED = "parameters must be in the form body, not the URL query (RFC 6749 §2.3.1, §3.2)"


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status_code = 413


async def read_params(request: Request, max_bytes: int) -> Params:
    if request.method != "POST":
        raise InvalidRequest("use POST")
    if request.scope.get("query_string"):
        raise InvalidRequest(QUERY_REFUSED)
    params = Params()
    try:
        body = await read_capped(request, max_bytes)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        data = parse_json(body or b"{}") if ctype == "application/json" else None
    except BodyError as exc:
        raise (PayloadTooLarge if exc.status == 413 else InvalidRequest)(exc.description) from None
    if ctype == "application/json":
        if not isinstance(data, dict):
            raise InvalidRequest("request body must be a JSON object")
        for key, value in data.items():
            if key in REPEATABLE and isinstance(value, list) and value and all(type(v) is str for v in value):
                params[key], params.repeated[key] = value[0], list(value)
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise InvalidRequest(f"parameter {key[:64]} must be a string")
            params[key] = str(value)
        return params
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise InvalidRequest("content type must be application/x-www-form-urlencoded or application/json")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not UTF-8") from None
    for key, value in pairs:
        if key in params:  # RFC 6749 §3.2: parameters must not be included more than once
            if key not in REPEATABLE:
                raise InvalidRequest(f"parameter {key} is repeated")
            params.repeated.setdefault(key, [params[key]]).append(value)
            continue
        params[key] = value
    return params


def every(params: Params, name: str) -> list[str]:
    """Every non-empty value of a REPEATABLE parameter, in order (none when it is absent)."""
    values = getattr(params, "repeated", {}).get(name)
    if values is None:
        first = params.get(name, "")
        return [first] if first else []
    return [v for v in values if v]


def required(params: Params, name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise InvalidRequest(f"missing parameter {name}")
    if len(value) > 8192:
        raise InvalidRequest(f"parameter {name} is too long")
    return value


@dataclass(slots=True)  # not frozen: a frozen one costs three times as much to build, per request
class ClientCredentials:
    """The client id and secret a request presents."""

    client_id: str
    secret: str = field(repr=False)  # never in a log line
    basic: bool  # sent as HTTP Basic: a failure answers with a Basic challenge

    @property
    def lookup_id(self) -> str | None:
        """The id to read from the store: none for an empty or absurdly long one (it cannot exist)."""
        return self.client_id if self.client_id and len(self.client_id) <= 256 else None

    def rejected(self) -> InvalidClient:
        return InvalidClient("client authentication failed", headers=_CHALLENGE if self.basic else {})


def client_credentials(request: Request, params: Params, required: bool = True) -> ClientCredentials | None:
    """The credentials the request presents; None when it presents none and none are `required`."""
    basic = _basic(request)
    if basic and ("client_secret" in params or params.get("client_id", basic[0]) != basic[0]):
        raise InvalidRequest("use one client authentication method: HTTP Basic or the request body, not both")
    if basic:
        return ClientCredentials(basic[0], basic[1], True)
    if "client_id" in params or "client_secret" in params:
        return ClientCredentials(params.get("client_id", ""), params.get("client_secret", ""), False)
    if required:
        raise InvalidClient("client authentication is required", headers=_CHALLENGE)
    return None


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
