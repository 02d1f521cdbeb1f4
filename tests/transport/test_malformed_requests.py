"""Issue 14, finding 3: RFC 9113 §8.1–8.3 and gRPC's content-type. A malformed request ends
its stream with RST_STREAM(PROTOCOL_ERROR) and is never served; a request that is well
formed but not gRPC gets the HTTP status gRPC's protocol asks for (415, 405); the connection
lives on either way."""

from __future__ import annotations

import itertools

import pytest

from tests.transport.raw import HEALTH, Raw, message, request_block, w

GOOD = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", HEALTH.encode()), (b":authority", b"x"),
        (b"content-type", b"application/grpc"), (b"te", b"trailers")]


def fields(drop: bytes = b"", **replace: bytes) -> list[tuple[bytes, bytes]]:
    out = [(n, replace.get(n.decode().strip(":").replace("-", "_"), v)) for n, v in GOOD if n != drop]
    return out


MALFORMED = {
    "uppercase name": GOOD + [(b"X-Upper", b"1")],
    "connection": GOOD + [(b"connection", b"keep-alive")],
    "keep-alive": GOOD + [(b"keep-alive", b"timeout=5")],
    "proxy-connection": GOOD + [(b"proxy-connection", b"close")],
    "transfer-encoding": GOOD + [(b"transfer-encoding", b"chunked")],
    "upgrade": GOOD + [(b"upgrade", b"h2c")],
    "te other than trailers": fields(te=b"gzip"),
    "pseudo-header after a regular one": GOOD[1:] + GOOD[:1],
    "unknown pseudo-header": GOOD + [(b":foo", b"bar")],
    "response pseudo-header": [(b":status", b"200")] + GOOD,
    "missing :method": fields(b":method"),
    "missing :scheme": fields(b":scheme"),
    "missing :path": fields(b":path"),
    "duplicate :path": GOOD[:3] + [(b":path", b"/other")] + GOOD[3:],
    "empty :path": fields(path=b""),
    "CR in a value": GOOD + [(b"x-a", b"a\rb")],
    "LF in a value": GOOD + [(b"x-a", b"a\nb")],
    "NUL in a value": GOOD + [(b"x-a", b"a\0b")],
    "leading space": GOOD + [(b"x-a", b" a")],
    "trailing tab": GOOD + [(b"x-a", b"a\t")],
    "space in a name": GOOD + [(b"x a", b"1")],
}


@pytest.fixture(scope="module")
def conn(h2_sidecar):
    raw = Raw(h2_sidecar.grpc_port)
    raw.ids = itertools.count(1, 2)
    yield raw
    raw.close()


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_request_is_reset_not_served(conn, case):
    sid = next(conn.ids)
    conn.send(w.frame(w.HEADERS, w.END_HEADERS, sid, request_block(fields=MALFORMED[case])),
              w.frame(w.DATA, w.END_STREAM, sid, message(b"")))
    assert conn.answer(sid) is None  # no answer: the stream was reset …
    sid = next(conn.ids)
    assert conn.health(sid)[b"grpc-status"] == b"0"  # … and the connection serves on


def reset_code(conn: Raw, sid: int, block: bytes) -> int | None:
    conn.send(w.frame(w.HEADERS, w.END_HEADERS, sid, block), w.frame(w.DATA, w.END_STREAM, sid, message(b"")))
    return conn.reset(sid)


def test_the_reset_says_protocol_error(conn):
    assert reset_code(conn, next(conn.ids), request_block(fields=MALFORMED["connection"])) == w.PROTOCOL_ERROR


@pytest.mark.parametrize("content_type, served", [
    (b"application/grpc", True), (b"application/grpc+proto", True), (b"application/grpc;charset=utf-8", True),
    (b"text/plain", False), (b"application/grpcx", False), (b"application/json", False), (None, False),
])
def test_content_type_must_be_grpc(conn, content_type, served):
    request = [f for f in GOOD if f[0] != b"content-type"] + ([(b"content-type", content_type)] if content_type else [])
    sid = next(conn.ids)
    conn.send(w.frame(w.HEADERS, w.END_HEADERS, sid, request_block(fields=request)),
              w.frame(w.DATA, w.END_STREAM, sid, message(b"")))
    data, answer = conn.answer(sid)
    if served:
        assert answer[b":status"] == b"200" and answer[b"grpc-status"] == b"0"
    else:  # gRPC over HTTP/2: "respond with HTTP status 415 (Unsupported Media Type)"
        assert answer[b":status"] == b"415" and answer[b"grpc-status"] == b"3" and data == b""
        assert b"content-type" in answer[b"grpc-message"]


def test_a_request_other_than_post_is_405(conn):
    sid = next(conn.ids)
    conn.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, sid, request_block(fields=fields(method=b"GET"))))
    _, answer = conn.answer(sid)
    assert answer[b":status"] == b"405" and answer[b"grpc-status"] == b"12"


def test_pseudo_headers_in_request_trailers_are_malformed(conn):
    sid = next(conn.ids)
    conn.send(w.frame(w.HEADERS, w.END_HEADERS, sid, request_block(fields=GOOD)),
              w.frame(w.DATA, 0, sid, message(b"")),
              w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, sid, request_block(fields=[(b":path", b"/x")])))
    assert conn.reset(sid) == w.PROTOCOL_ERROR
    sid = next(conn.ids)
    conn.send(w.frame(w.HEADERS, w.END_HEADERS, sid, request_block(fields=GOOD)),
              w.frame(w.DATA, 0, sid, message(b"")),
              w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, sid, request_block(fields=[(b"x-t", b"1")])))
    assert conn.answer(sid)[1][b"grpc-status"] == b"0"  # plain trailers are fine
