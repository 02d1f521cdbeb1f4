"""Header blocks: constant answer blocks, the header-block cache, padding."""

from __future__ import annotations

import pytest
from hpack import Decoder, Encoder

from transport.h2 import frames as w
from transport.h2 import headers as hd


def test_answer_blocks_decode_to_the_grpc_headers():
    d = Decoder()
    assert d.decode(hd.RESPONSE_HEADERS, raw=True) == [(b":status", b"200"), (b"content-type", b"application/grpc")]
    long = "x" * 300  # lengths past HPACK's 7-bit prefix
    assert d.decode(hd.trailers(16, long), raw=True) == [(b"grpc-status", b"16"), (b"grpc-message", long.encode())]
    assert d.header_table.dynamic_entries == type(d.header_table.dynamic_entries)()  # no encoder state used


def test_a_cached_block_is_not_reused_once_the_table_changed():
    # the same bytes (an index into the dynamic table) mean another header after an insertion
    enc, blocks = Encoder(), hd.HeaderBlocks()
    assert blocks.decode(enc.encode([(b"x-a", b"1")])) == [(b"x-a", b"1")]  # inserted at index 62
    again = enc.encode([(b"x-a", b"1")])  # now just "index 62"
    assert blocks.decode(again) == [(b"x-a", b"1")]
    assert blocks.decode(again) == [(b"x-a", b"1")]  # answered from the cache
    assert blocks.decode(enc.encode([(b"x-b", b"2")])) == [(b"x-b", b"2")]  # x-b is index 62 now
    assert blocks.decode(again) == [(b"x-b", b"2")]


def test_a_broken_block_is_a_compression_error():
    with pytest.raises(w.H2Error) as err:
        hd.HeaderBlocks().decode(b"\xff\xff\xff\xff\xff")
    assert err.value.code == w.COMPRESSION_ERROR


@pytest.mark.parametrize("flags, payload, priority, body", [
    (0, b"abc", False, b"abc"),
    (w.PADDED, b"\x02abcXY", False, b"abc"),
    (w.PADDED | w.PRIORITY_FLAG, b"\x01\x00\x00\x00\x00\x10abcX", True, b"abc"),
    (w.PRIORITY_FLAG, b"\x00\x00\x00\x00\x10abc", True, b"abc"),
])
def test_unpad(flags, payload, priority, body):
    assert w.unpad(flags, payload, priority) == body


def test_padding_longer_than_the_frame_is_a_protocol_error():
    with pytest.raises(w.H2Error) as err:
        w.unpad(w.PADDED, b"\x09abc")
    assert err.value.code == w.PROTOCOL_ERROR

