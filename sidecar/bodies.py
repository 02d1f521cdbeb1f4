"""Request bodies an attacker controls: read up to a cap (never the whole body first), and JSON
parsed only when its nesting is shallow (Python's parser recurses: 1,000 levels raise
RecursionError)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

MAX_JSON_DEPTH = 32  # our bodies nest 2 deep; a deeper one is an attack or a mistake
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


class BodyError(Exception):
    """A body refused: `status` 400 or 413, `description` names the problem."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be larger than max_bytes: a
    Content-Length over the cap before a byte is read, a chunked body once the cap is passed."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        if not declared.isdigit():
            raise BodyError(400, "Content-Length is not a number")
        raise BodyError(413, f"request body is larger than {max_bytes} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise BodyError(413, f"request body is larger than {max_bytes} bytes")
    except ClientDisconnect:  # gone, or closed for sending too slowly: nobody reads the answer
        raise BodyError(400, "the request body was not received in full") from None
    return bytes(body)


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest, counted without recursion (brackets inside strings
    do not count)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        if bracket in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of a body; BodyError(400) naming the problem for anything else."""
    if json_depth(raw) > max_depth:
        raise BodyError(400, f"request body nests deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BodyError(400, "request body is not valid JSON") from None
    except RecursionError:  # not reached past the depth check; never a 500 all the same
        raise BodyError(400, f"request body nests deeper than {max_depth} levels") from None
