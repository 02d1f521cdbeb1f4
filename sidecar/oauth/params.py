"""Reading a token-endpoint request: form (RFC 6749) or JSON, size-limited, no repeated parameters."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request

from sidecar.oauth.errors import InvalidRequest, OAuthError


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status_code = 413


async def read_params(request: Request, max_bytes: int) -> dict[str, str]:
    if request.method != "POST":
        raise InvalidRequest("use POST")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidRequest("request body must be a JSON object")
        params = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise InvalidRequest(f"parameter {key} must be a string")
            params[key] = str(value)
        return params
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise InvalidRequest("content type must be application/x-www-form-urlencoded or application/json")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not UTF-8") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:  # RFC 6749 §3.2: parameters must not be included more than once
            raise InvalidRequest(f"parameter {key} is repeated")
        params[key] = value
    return params


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise InvalidRequest(f"missing parameter {name}")
    if len(value) > 8192:
        raise InvalidRequest(f"parameter {name} is too long")
    return value
