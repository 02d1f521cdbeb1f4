"""Issue 14, finding 4: the RFC 9113 error code for each protocol violation, and a client's
GOAWAY honoured."""

from __future__ import annotations

import pytest

from tests.transport.raw import HEALTH, Raw, message, request_block, w

SETTINGS_ONLY = w.PREFACE + w.settings({})
OPEN_1 = w.frame(w.HEADERS, w.END_HEADERS, 1, request_block(HEALTH))  # a request still sending its body


@pytest.mark.parametrize("frames, code", [
    (w.window_update(7, 10), w.PROTOCOL_ERROR),  # WINDOW_UPDATE on an idle stream
    (w.window_update(2, 10), w.PROTOCOL_ERROR),  # even ids are the server's: idle
    (w.rst_stream(7, w.CANCEL), w.PROTOCOL_ERROR),  # RST_STREAM on an idle stream
    (w.frame(w.HEADERS, w.END_HEADERS, 5, request_block(HEALTH))
     + w.frame(w.HEADERS, w.END_HEADERS, 3, request_block(HEALTH)), w.PROTOCOL_ERROR),  # stream id going backwards
    (w.settings({w.SETTINGS_ENABLE_PUSH: 2}), w.PROTOCOL_ERROR),
    (OPEN_1 + w.frame(w.RST_STREAM, 0, 1, b"\0\0\0"), w.FRAME_SIZE_ERROR),
    (OPEN_1 + w.frame(w.WINDOW_UPDATE, 0, 1, b"\0\0\0\0\1"), w.FRAME_SIZE_ERROR),
    (w.frame(w.PING, 0, 0, bytes(7)), w.FRAME_SIZE_ERROR),
    (w.frame(w.SETTINGS, 0, 0, bytes(5)), w.FRAME_SIZE_ERROR),
    (w.frame(w.SETTINGS, w.ACK, 0, bytes(6)), w.FRAME_SIZE_ERROR),
    (w.frame(w.GOAWAY, 0, 0, bytes(4)), w.FRAME_SIZE_ERROR),
    (OPEN_1 + w.frame(w.GOAWAY, 0, 1, bytes(8)), w.PROTOCOL_ERROR),  # GOAWAY on a stream
    (w.frame(w.PRIORITY, 0, 0, bytes(5)), w.PROTOCOL_ERROR),
    (w.frame(w.PUSH_PROMISE, w.END_HEADERS, 1, bytes(4)), w.PROTOCOL_ERROR),
    # a SETTINGS change that takes an open stream's window past 2^31-1 (§6.9.2)
    (OPEN_1 + w.window_update(1, 2**31 - 1 - 65_535) + w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 65_536}),
     w.FLOW_CONTROL_ERROR),
], ids=["window_update_idle", "window_update_even", "rst_stream_idle", "stream_id_backwards", "enable_push_2",
        "rst_stream_3_bytes", "window_update_5_bytes", "ping_7_bytes", "settings_5_bytes", "settings_ack_payload",
        "goaway_4_bytes", "goaway_on_a_stream", "priority_stream_0", "push_promise", "settings_overflows_window"])
def test_connection_errors(h2_sidecar, frames, code):
    raw = Raw(h2_sidecar.grpc_port)
    raw.send(frames)
    assert raw.goaway() == code
    assert raw.closed()


@pytest.mark.parametrize("frames, sid, code", [
    (w.frame(w.PRIORITY, 0, 3, bytes(4)), 3, w.FRAME_SIZE_ERROR),  # PRIORITY of other than 5 bytes
    (w.frame(w.PRIORITY, 0, 3, b"\0\0\0\3\x10"), 3, w.PROTOCOL_ERROR),  # PRIORITY depending on itself
    (w.frame(w.HEADERS, w.END_HEADERS | w.PRIORITY_FLAG, 3, b"\0\0\0\3\x10" + request_block(HEALTH)), 3,
     w.PROTOCOL_ERROR),  # HEADERS depending on itself: never served
], ids=["priority_4_bytes", "priority_self_dependency", "headers_self_dependency"])
def test_stream_errors_leave_the_connection_serving(h2_sidecar, frames, sid, code):
    raw = Raw(h2_sidecar.grpc_port)
    raw.send(frames, w.frame(w.DATA, w.END_STREAM, sid, message(b"")) if frames[3] == w.HEADERS else b"")
    assert raw.reset(sid) == code
    assert raw.health(5)[b"grpc-status"] == b"0"


def test_a_client_goaway_finishes_the_streams_in_flight_then_closes(h2_sidecar):
    raw = Raw(h2_sidecar.grpc_port)
    raw.send(OPEN_1, w.goaway(0, w.NO_ERROR))  # stream 1's body is still to come
    raw.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 3, request_block(HEALTH)))  # after GOAWAY
    assert raw.reset(3) == w.REFUSED_STREAM
    raw.send(w.frame(w.DATA, w.END_STREAM, 1, message(b"")))
    assert raw.answer(1)[1][b"grpc-status"] == b"0"
    assert raw.closed()


def test_a_client_goaway_with_an_error_closes_at_once(h2_sidecar):
    raw = Raw(h2_sidecar.grpc_port)
    raw.send(OPEN_1, w.goaway(0, w.INTERNAL_ERROR))
    assert raw.closed()


def test_frames_on_a_stream_the_server_reset_are_ignored(h2_sidecar):
    # a message past the limit is answered early and the stream reset; the rest of the
    # client's request, already on its way, must not be taken for a protocol error
    raw = Raw(h2_sidecar.grpc_port)
    big = message(bytes(2 << 20))
    raw.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_block(HEALTH)))
    for i in range(0, 1 << 20 + 1, 16384):
        raw.send(w.frame(w.DATA, 0, 1, big[i:i + 16384]))
    raw.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1, request_block(fields=[(b"x-t", b"1")])))
    assert raw.answer(1)[1][b"grpc-status"] == b"8"  # RESOURCE_EXHAUSTED
    assert raw.health(3)[b"grpc-status"] == b"0"
