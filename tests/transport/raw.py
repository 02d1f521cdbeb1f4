"""A raw HTTP/2 client over a blocking socket, for what a client library never sends."""

from __future__ import annotations

import socket

from hpack import Decoder

from tests.support.h2_attacker import message, request_block
from transport.h2 import frames as w

HEALTH = "/grpc.health.v1.Health/Check"

__all__ = ["HEALTH", "Raw", "message", "request_block", "w"]


class Raw:
    def __init__(self, port: int, settings: dict[int, int] | None = None, opening: bytes | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.timed_out = False  # a read waited 5 s for nothing
        self.decoder = Decoder()
        self.send(opening if opening is not None else w.PREFACE + w.settings(settings or {}))

    def send(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(frames))

    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return False
            except socket.timeout:
                self.timed_out = True
                return False
            if not data:
                return False
            self.buf += data
        return True

    def frame(self) -> tuple[int, int, int, bytes] | None:
        """(type, flags, stream, payload), or None once the server closed (or 5 s passed)."""
        if not self._fill(9):
            return None
        hi, lo, ftype, flags, stream_id = w.FRAME_HEAD.unpack_from(self.buf)
        n = hi << 16 | lo
        if not self._fill(9 + n):
            return None
        payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
        return ftype, flags, stream_id, payload

    def until(self, ftype: int, stream_id: int | None = None) -> tuple[int, int, int, bytes] | None:
        while (f := self.frame()) is not None:
            if f[0] == w.HEADERS:
                self.decoder.decode(f[3], raw=True)  # the decoder follows every block
            if f[0] == ftype and (stream_id is None or f[2] == stream_id):
                return f
        return None

    def goaway(self) -> int | None:
        """The error code of the server's GOAWAY (None: it closed without one)."""
        f = self.until(w.GOAWAY)
        return None if f is None else w.error_code(f[3], 4)

    def reset(self, stream_id: int) -> int | None:
        f = self.until(w.RST_STREAM, stream_id)
        return None if f is None else w.error_code(f[3])

    def closed(self) -> bool:
        """True once the server closed the connection (reading everything it still sent)."""
        while self.frame() is not None:
            pass
        if self.timed_out:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def answer(self, stream_id: int) -> tuple[bytes, dict[bytes, bytes]] | None:
        """The DATA and all header fields of one answer, or None if the server ended the
        stream or the connection without one."""
        data, fields = b"", {}
        while (f := self.frame()) is not None:
            ftype, flags, sid, payload = f
            if ftype == w.HEADERS:
                decoded = self.decoder.decode(payload, raw=True)
                if sid == stream_id:
                    fields.update(decoded)
                    if flags & w.END_STREAM:
                        return data, fields
            elif sid == stream_id and ftype == w.DATA:
                data += payload
            elif sid == stream_id and ftype == w.RST_STREAM:
                return None
            elif ftype == w.GOAWAY:
                continue
        return None

    def health(self, stream_id: int) -> dict[bytes, bytes] | None:
        """A gRPC health Check on a new stream: its fields (grpc-status …)."""
        self.send(w.frame(w.HEADERS, w.END_HEADERS, stream_id, request_block(HEALTH)),
                  w.frame(w.DATA, w.END_STREAM, stream_id, message(b"")))
        got = self.answer(stream_id)
        return None if got is None else got[1]

    def close(self) -> None:
        self.sock.close()
