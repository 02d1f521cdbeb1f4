"""Issue 14, finding 5: connections that never finish their handshake or sit idle are
closed, and the request bytes buffered across all connections have a cap."""

from __future__ import annotations

import select
import time

import pytest

from authz.keys import write_new_key
from tests.support.h2_attacks import measure
from tests.support.processes import Sidecar
from tests.transport.raw import HEALTH, Raw, message, request_block, w


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("h2-timeouts")
    write_new_key(tmp / "keys", "ES256")
    sidecar = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys"),
                           "AUTH_SIDECAR_GRPC_HANDSHAKE_TIMEOUT_SECONDS": "1",
                           "AUTH_SIDECAR_GRPC_IDLE_TIMEOUT_SECONDS": "1.5",
                           "AUTH_SIDECAR_GRPC_MAX_BUFFERED_BYTES": str(4 << 20)}, tmp=tmp).start()
    yield sidecar
    assert sidecar.stop() == 0


def test_half_prefaces_are_closed_after_the_handshake_timeout(strict):
    # 100 connections that send half a preface, coming back whenever they are closed
    attack, probe = measure(strict, "half_preface_x100", duration=2.5)
    assert not probe.failures and probe.stall < 1.0, probe.longest
    assert attack["connections"] >= 200  # each of the 100 closed at least once in 2.5 s


def test_a_preface_without_settings_is_closed_too(strict):
    raw = Raw(strict.grpc_port, opening=w.PREFACE)
    start = time.monotonic()
    assert raw.closed() and time.monotonic() - start < 3


def test_an_idle_connection_is_told_goaway_and_closed(strict):
    raw = Raw(strict.grpc_port)
    assert raw.health(1)[b"grpc-status"] == b"0"
    start = time.monotonic()
    assert raw.goaway() == w.NO_ERROR
    assert raw.closed() and 1.5 <= time.monotonic() - start < 3.5


def test_a_connection_with_a_stream_open_is_not_idle(strict):
    raw = Raw(strict.grpc_port)
    raw.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_block(HEALTH)))  # its body still to come
    assert raw.frame()[0] == w.SETTINGS and raw.frame()[0] == w.SETTINGS  # the server's and its ack
    readable, _, _ = select.select([raw.sock], [], [], 2.5)  # past the idle timeout: no GOAWAY, no close
    assert not readable and not raw.buf
    raw.send(w.frame(w.DATA, w.END_STREAM, 1, message(b"")))
    assert raw.answer(1)[1][b"grpc-status"] == b"0"


def test_request_bytes_across_connections_have_a_cap(strict):
    # 16 connections × 8 streams × 512 KiB never finished (64 MiB) against a 4 MiB cap:
    # streams past the cap are refused, memory stays put, everyone else is answered
    attack, probe = measure(strict, "body_hoarding_16x8x512k", duration=2.5)
    assert w.REFUSED_STREAM in attack["resets"]
    assert not probe.failures and probe.stall < 1.0, probe.longest
    assert probe.rss_max - probe.rss_before < 25, (probe.rss_before, probe.rss_max)
    raw = Raw(strict.grpc_port)
    assert raw.health(1)[b"grpc-status"] == b"0"
