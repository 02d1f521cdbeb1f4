"""Reading a token-endpoint request: form (RFC 6749) or JSON, size-limited, no repeated parameters."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from sidecar.bodies import BodyError, parse_json, read_capped
from sidecar.oauth.errors import InvalidRequest, OAuthError

Params = dict[str, str]  # a request's parameters, each given once


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status_code = 413


async def read_params(request: Request, max_bytes: int) -> Params:
    if request.method != "POST":
        raise InvalidRequest("use POST")
    try:
        body = await read_capped(request, max_bytes)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        data = parse_json(body or b"{}") if ctype == "application/json" else None
    except BodyError as exc:
        raise (PayloadTooLarge if exc.status == 413 else InvalidRequest)(exc.description) from None
    if ctype == "application/json":
        if not isinstance(data, dict):
            raise InvalidRequest("request body must be a JSON object")
        params = {}
        for key, value in data.items():
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
    params: Params = {}
    for key, value in pairs:
        if key in params:  # RFC 6749 §3.2: parameters must not be included more than once
            raise InvalidRequest(f"parameter {key} is repeated")
        params[key] = value
    return params


def required(params: Params, name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise InvalidRequest(f"missing parameter {name}")
    if len(value) > 8192:
        raise InvalidRequest(f"parameter {name} is too long")
    return value
