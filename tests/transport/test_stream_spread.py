"""SETTINGS_MAX_CONCURRENT_STREAMS as a request to spread, not a wall: `grpc_max_concurrent_streams`
asks each connection to keep to that many streams (a busy Envoy worker then opens another
connection, which the supervisor hands to another worker), and the port still serves the
streams a client sent before it read that SETTINGS, up to the hard limit."""

from __future__ import annotations

import struct

from tests.support.processes import Sidecar
from tests.transport.raw import HEALTH, Raw, message, request_block, w


def settings_of(frame_payload: bytes) -> dict[int, int]:
    return {k: v for k, v in struct.iter_unpack(">HI", frame_payload)}


def test_streams_past_the_advertised_number_are_served_not_refused(tmp_path, keys_dir):
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(keys_dir), "AUTH_SIDECAR_GRPC_MAX_CONCURRENT_STREAMS": "4"},
                tmp=tmp_path).start()
    try:
        raw = Raw(s.grpc_port)
        first = raw.frame()
        assert first is not None and first[0] == w.SETTINGS
        assert settings_of(first[3])[w.SETTINGS_MAX_CONCURRENT_STREAMS] == 4
        # ten streams at once, as a client that has not read our SETTINGS yet sends them
        raw.send(w.frame(w.SETTINGS, w.ACK, 0, b""),
                 *(w.frame(w.HEADERS, w.END_HEADERS, sid, request_block(HEALTH))
                   + w.frame(w.DATA, w.END_STREAM, sid, message(b"")) for sid in range(1, 21, 2)))
        ended, refused = set(), set()
        while len(ended | refused) < 10:
            f = raw.frame()
            assert f is not None, "the connection closed"
            if f[0] == w.HEADERS:
                raw.decoder.decode(f[3], raw=True)
                if f[1] & w.END_STREAM:
                    ended.add(f[2])
            elif f[0] == w.RST_STREAM:
                refused.add(f[2])
        assert ended == set(range(1, 21, 2)) and not refused
    finally:
        assert s.stop() == 0


def test_unset_the_hard_limit_alone_is_announced(h2_sidecar):
    first = Raw(h2_sidecar.grpc_port).frame()
    assert first is not None and first[0] == w.SETTINGS
    assert settings_of(first[3])[w.SETTINGS_MAX_CONCURRENT_STREAMS] == 1024

