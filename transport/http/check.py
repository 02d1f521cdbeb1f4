"""The HTTP face of ext_authz (Envoy `http_service`), a bare ASGI app under /ext_authz/.

It is mounted ahead of Starlette's routing and middleware: this is the fastest way in.
Envoy copies the allowed response headers upstream (overwriting) and removes those named
in `x-envoy-auth-headers-to-remove`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from authz.decision import Decision, remember
from authz.engine import Checked, Engine
from authz.identity import Identity
from authz.mutation import Mutator
from authz.now_or_later import Later, NowOrLater
from authz.request import AuthRequest

PREFIX = "/ext_authz"
REMOVE_HEADER = b"x-envoy-auth-headers-to-remove"
_RAW_PREFIX = PREFIX.encode()
ASGI, RAW = "http", "http_raw"  # this adapter's keys in Decision.encoded


def encode(decision: Decision, mutator: Mutator) -> tuple[dict[str, Any], bytes]:
    """The ASGI start message and body (a personal decision's without the token's own header)."""
    if decision.allowed:
        headers = [(k.encode(), v.encode()) for k, v in mutator.headers(decision)]
        remove = mutator.remove(decision)
        if remove:
            headers.append((REMOVE_HEADER, ",".join(remove).encode()))
        headers.append((b"content-length", b"0"))
        return {"type": "http.response.start", "status": 200, "headers": headers}, b""
    body = decision.body
    headers = [(b"www-authenticate", decision.www_authenticate.encode()),
               (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if decision.nonce:  # RFC 9449 §9: the nonce a DPoP proof must carry
        headers.append((b"dpop-nonce", decision.nonce.encode()))
    return {"type": "http.response.start", "status": decision.status, "headers": headers}, body


def encode_raw(decision: Decision, mutator: Mutator) -> tuple[bytes, bytes]:
    """HTTP/1.1 status line and header lines (no Date, no blank line yet) and the body."""
    start, body = encode(decision, mutator)
    status = start["status"]
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
    lines += [name + b": " + value + b"\r\n" for name, value in start["headers"]]
    return b"".join(lines), body


def raw_path(target: bytes) -> str | None:
    """The checked path of a request target under /ext_authz, or None for any other target
    (and for percent-encoded ones, left to the ASGI path that decodes them)."""
    if not target.startswith(_RAW_PREFIX) or b"%" in target or b"#" in target:
        return None
    rest = target[len(_RAW_PREFIX):]
    if not rest:
        return "/"
    if rest[0] == 0x3F:  # "?"
        return "/" + rest.decode("latin-1")
    return rest.decode("latin-1") if rest[0] == 0x2F else None  # "/"


def _request(headers: list[tuple[bytes, bytes]], path: str, method: str) -> AuthRequest:
    fields = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
    if len(fields) != len(headers):  # a repeated field: not the last one alone (two DPoP proofs are refused)
        fields = _combined(headers)
    return AuthRequest(fields, path, method)


def _combined(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Repeated fields as one value, as Envoy's CheckRequest gives them to the gRPC mode
    (RFC 9110 §5.3; cookies joined by "; ", RFC 9113 §8.2.3)."""
    fields: dict[str, str] = {}
    for k, v in headers:
        name, value = k.decode("latin-1"), v.decode("latin-1")
        seen = fields.get(name)
        fields[name] = value if seen is None else seen + ("; " if name == "cookie" else ",") + value
    return fields


class HttpCheckApp:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._user_header = engine.mutator.names.user.encode()

    def refresh(self) -> None:
        """The engine's header names changed (a reload)."""
        self._user_header = self.engine.mutator.names.user.encode()

    def answer_now(self, method: bytes, path: str, headers: list[tuple[bytes, bytes]], date: bytes
                   ) -> bytes | Later:
        """The whole HTTP/1.1 response now when the check needs no I/O (a cached or a missing
        token), else the check later (its result then goes to `raw_answer`). `date` is the
        Date header line."""
        result: NowOrLater[Checked] = self.engine.check_now(_request(headers, path, method.decode("ascii")), "http")
        if type(result) is Later:
            return result  # type: ignore[return-value]
        return self.raw_answer(*result, date)  # type: ignore[misc]

    def raw_answer(self, decision: Decision, identity: Identity | None, date: bytes) -> bytes:
        try:
            head, body = decision.encoded[RAW]  # type: ignore[index]
        except (TypeError, KeyError):  # the first inline answer of this decision
            head, body = remember(decision, RAW, encode_raw(decision, self.engine.mutator))
        if decision.personal and identity.subject:
            return b"%s%s%s: %s\r\n\r\n%s" % (head, date, self._user_header, identity.subject.encode(), body)
        return b"%s%s\r\n%s" % (head, date, body)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"][len(PREFIX):] or "/"
        if scope.get("query_string"):
            path = f"{path}?{scope['query_string'].decode('latin-1')}"
        decision, identity = await self.engine.check(_request(scope["headers"], path, scope.get("method", "GET")),
                                                     "http")
        try:
            start, body = decision.encoded[ASGI]  # type: ignore[index]
        except (TypeError, KeyError):  # the first ASGI answer of this decision
            start, body = remember(decision, ASGI, encode(decision, self.engine.mutator))
        if decision.personal and identity.subject:  # the token's own header, per response
            start = {"type": "http.response.start", "status": 200,
                     "headers": [*start["headers"], (self._user_header, identity.subject.encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body})
