"""hpack internals: checked against hpack 4.2.0 (guarded by tests/test_canaries.py).
Header blocks (RFC 7541) and what RFC 9113 §8.1–8.3 and gRPC require of a request's
header fields.

Requests are decoded with `hpack`'s Decoder behind a cache: Envoy sends the same header
block for every Check, so decoding and checking it happens once. Answers use only HPACK's
static table and literals without indexing: every answer's header block is constant bytes
and there is no encoder state, except the one dynamic-table size update a client that
shrinks its table must see first (RFC 7541 §4.2, `TABLE_SIZE_ZERO`).
"""

from __future__ import annotations

import re

from hpack import Decoder
from hpack.exceptions import HPACKError

from transport.h2.frames import COMPRESSION_ERROR, PROTOCOL_ERROR, H2Error, StreamError


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    return b"\x00" + _integer(len(name), 7, 0) + name + _integer(len(value), 7, 0) + value


# ":status: 200" is static entry 8; content-type's name is static entry 31
_CONTENT_TYPE = _integer(31, 4, 0) + _integer(16, 7, 0) + b"application/grpc"
RESPONSE_HEADERS = b"\x88" + _CONTENT_TYPE

# a dynamic table size update to 0 (§6.3): we never use the table, so 0 suits any client size
TABLE_SIZE_ZERO = _integer(0, 5, 0x20)


def trailers(status: int, message: str = "") -> bytes:
    block = _literal(b"grpc-status", str(status).encode())
    if message:
        block += _literal(b"grpc-message", message.encode("ascii"))
    return block


def refusal(http_status: int, grpc_status: int, message: str) -> bytes:
    """The one header block (headers and trailers together, "Trailers-Only") of an answer
    refused before the call: `:status` other than 200, as gRPC's HTTP/2 protocol asks for a
    request that is not gRPC."""
    status = _integer(8, 4, 0) + _integer(3, 7, 0) + str(http_status).encode()  # name of static entry 8
    return status + _CONTENT_TYPE + trailers(grpc_status, message)


class Request:
    """What the server needs of a request's header block: its path, or why it is refused."""

    __slots__ = ("path", "http_status", "problem")

    def __init__(self, path: bytes, http_status: int = 0, problem: str = "") -> None:
        self.path = path
        self.http_status = http_status  # not 0: answered with this status before any call
        self.problem = problem  # with http_status 0: malformed (§8.1.1), a stream PROTOCOL_ERROR


_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority"))
_REQUIRED = (b":method", b":scheme", b":path")
_CONNECTION_SPECIFIC = frozenset((b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding",
                                  b"upgrade"))
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z:\x7f-\xff]")  # §8.2.1 (a colon only opens a pseudo-header)
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")  # §8.2.1
_GRPC_TYPE = re.compile(rb"application/grpc(?:$|[+;])")


def _malformed(problem: str) -> Request:
    return Request(b"", 0, problem)


def check_request(headers: list[tuple[bytes, bytes]]) -> Request:
    """RFC 9113 §8.2–8.3 for a request's fields, then gRPC's POST and content-type."""
    pseudo: dict[bytes, bytes] = {}
    regular = False
    content_type = None
    for name, value in headers:
        if name[:1] == b":":
            if regular:
                return _malformed(f"pseudo-header {_show(name)} after a regular header")
            if name not in _PSEUDO:
                return _malformed(f"unknown pseudo-header {_show(name)}")
            if name in pseudo:
                return _malformed(f"duplicate pseudo-header {_show(name)}")
            pseudo[name] = value
        else:
            regular = True
            if not name or _BAD_NAME.search(name):
                return _malformed(f"invalid header name {_show(name)}")
            if name in _CONNECTION_SPECIFIC:
                return _malformed(f"connection-specific header {_show(name)}")
            if name == b"te" and value != b"trailers":
                return _malformed("te other than trailers")
            if name == b"content-type":
                content_type = value
        if _BAD_VALUE.search(value):
            return _malformed(f"invalid value of {_show(name)}")
    for name in _REQUIRED:
        if name not in pseudo:
            return _malformed(f"missing {name.decode()}")
    path = pseudo[b":path"]
    if not path:
        return _malformed("empty :path")
    if pseudo[b":method"] != b"POST":
        return Request(path, 405, "gRPC calls are POST requests")
    if content_type is None or not _GRPC_TYPE.match(content_type):
        return Request(path, 415, f"invalid gRPC request content-type {_show(content_type or b'')}")
    return Request(path)


def check_trailers(headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        if name[:1] == b":" or not name or _BAD_NAME.search(name) or _BAD_VALUE.search(value):
            raise StreamError(PROTOCOL_ERROR, f"malformed trailer {_show(name)}")


def _show(name: bytes) -> str:
    return repr(name[:40].decode("latin-1"))


class HeaderBlocks:
    """Decodes request header blocks. A block seen before is answered from a cache while the
    decoder's dynamic table is unchanged since: then it decodes to the same list."""

    def __init__(self, max_list_size: int = 64 * 1024, max_cached: int = 64) -> None:
        self.max_block = max_list_size  # header blocks gathered from CONTINUATION frames stop here
        self._decoder = Decoder(max_header_list_size=max_list_size)
        self._seen: dict[bytes, Request] = {}
        self._max_cached = max_cached
        self._state = self._table_state()

    def _table_state(self) -> tuple[int, int, int]:
        # an insertion puts a new tuple first; a size update changes maxsize or evicts (hpack
        # internals, checked with hpack 4.0–4.2: tests/test_canaries.py)
        table = self._decoder.header_table
        entries = table.dynamic_entries
        return table.maxsize, len(entries), id(entries[0]) if entries else 0

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """Every block goes through here: the decoder's table must follow the client's."""
        try:
            return list(self._decoder.decode(block, raw=True))
        except (HPACKError, IndexError, ValueError) as exc:
            raise H2Error(COMPRESSION_ERROR, f"bad header block: {exc}") from None

    def request(self, block: bytes) -> Request:
        """A request's header block, checked."""
        request = self._seen.get(block)
        if request is not None:
            return request
        request = check_request(self.decode(block))
        state = self._table_state()
        if state != self._state:  # the table changed: cached blocks may now mean something else
            self._seen.clear()
            self._state = state
        elif len(self._seen) < self._max_cached:
            self._seen[block] = request
        return request
