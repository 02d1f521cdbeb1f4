"""gRPC unary calls served straight on HTTP/2 and the worker's event loop.

Why not grpc.aio, measured on 2 cores with h2load and a servicer returning a fixed answer:
grpc.aio's core runs a poller thread beside the event loop, so one worker already takes
more than a core and a second worker adds ~2 % (4,517 → 4,608 req/s), where a transport on
the event loop gives 5,182 → 9,326. Why not the `h2` library either: see `authz.h2_wire`.
It carries only what ext_authz and health probes need: unary calls, h2c (no TLS: Envoy and
the mesh speak plain HTTP/2 to the sidecar), no compression. `grpc_server: grpcio` in the
settings still selects grpc.aio.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Awaitable, Callable

from authz import h2_wire as w

log = logging.getLogger("authz.grpc_h2")

# gRPC status codes used here
INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL = 3, 8, 12, 13


class GrpcError(Exception):
    """Raised by a method to answer with a gRPC status other than OK."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# request message → response message, returned at once or awaitable when it needs I/O
Method = Callable[[bytes], "bytes | Awaitable[bytes]"]

_PREFIX = struct.Struct(">BI")  # compressed flag, message length
_MAX_STREAMS = 1024
_FLUSH_AFTER = 64  # frames (or whole answers) gathered in one read before they are written
_OK_TRAILERS = w.trailers(0)
_RESPONSE_HEADERS_LEN = len(w.RESPONSE_HEADERS)
_HEAD = w.FRAME_HEAD
# our receive windows are topped up once this much of them is used
_WINDOW_TOP_UP = w.DEFAULT_WINDOW // 2


def _trailers(code: int, message: str) -> bytes:
    # grpc-message is percent-encoded UTF-8: printable ASCII but '%' stays as it is
    text = "".join(c if " " <= c <= "~" and c != "%" else "".join(f"%{b:02X}" for b in c.encode())
                   for c in message)
    return w.trailers(code, text)


class GrpcH2Server:
    def __init__(self, methods: dict[str, Method], max_message: int = 1 << 20) -> None:
        self.methods = {path.encode(): method for path, method in methods.items()}
        self.max_message = max_message
        # unfinished requests one connection may hold: streams × max_message would be a GiB
        self.max_buffered = 8 * max_message
        self.connections: set[_Connection] = set()
        self.inflight: set[asyncio.Task] = set()
        self._server: asyncio.base_events.Server | None = None
        self.adopting: set[asyncio.Task] = set()
        self.on_connection_closed: Callable[[], None] | None = None  # --workers: counts for the balancer

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        # SO_REUSEPORT: every --workers process listens on the same port
        self._server = await loop.create_server(lambda: _Connection(self), host or None, port,
                                                reuse_port=True, backlog=2048)

    def adopt(self, sock: socket.socket) -> None:
        """Serve a connection accepted elsewhere (the supervisor of --workers hands them out)."""
        task = asyncio.get_running_loop().create_task(self._adopt(sock))
        self.adopting.add(task)
        task.add_done_callback(self.adopting.discard)

    async def _adopt(self, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: _Connection(self), sock)
        except OSError as exc:  # the client left before we got it: it still counts as closed
            log.debug("handed connection not served", extra={"error": type(exc).__name__})
            sock.close()
            if self.on_connection_closed is not None:
                self.on_connection_closed()

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1] if self._server else 0

    async def stop(self, grace: float) -> None:
        """Stop accepting, tell every client to open no new stream (GOAWAY), let the calls in
        flight finish within `grace`, then close."""
        if self._server:
            self._server.close()
        for connection in list(self.connections):
            connection.drain()
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=grace)
        for connection in list(self.connections):
            connection.close()


class _Connection(asyncio.Protocol):
    def __init__(self, server: GrpcH2Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.inbox = bytearray()  # received bytes not yet a whole frame
        self.preface_seen = False
        self.out: list[bytes] = []  # frames to write at the end of this pass
        self.blocks = w.HeaderBlocks()
        self.continuing: tuple[int, int, bytearray] | None = None  # (stream, flags, block) until END_HEADERS
        self.requests: dict[int, tuple[bytes, bytearray]] = {}  # stream → (path, body so far)
        self.buffered = 0  # bytes in self.requests
        self.unacked: dict[int, int] = {}  # stream → DATA bytes received since its last WINDOW_UPDATE
        self.conn_unacked = 0
        # send side: the client's windows and frame size
        self.windows: dict[int, int] = {}  # stream not yet finished → its send window
        self.send_window = w.DEFAULT_WINDOW
        self.initial_window = w.DEFAULT_WINDOW
        self.max_frame = w.DEFAULT_MAX_FRAME
        self.unsent: dict[int, tuple[bytes, bytes]] = {}  # stream → (data, trailers) waiting for window
        self.active: set[int] = set()  # streams whose call is running
        self.highest = 0  # highest stream id the client opened
        self.last_stream: int | None = None  # set once draining: later streams are refused
        self.writing_paused = False
        self.answered = 0  # answers of the read being handled

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.transport.write(w.settings({w.SETTINGS_MAX_CONCURRENT_STREAMS: _MAX_STREAMS}))

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        if self.server.on_connection_closed is not None:
            self.server.on_connection_closed()

    # A client that sends requests but does not read the answers: stop handling its requests
    # (the rest of this read too) until the answers drained, or they pile up without bound.

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transport is not None:
            self.transport.resume_reading()
            if self.inbox:
                self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        if self.inbox:
            self.inbox += data
            data = bytes(self.inbox)
            self.inbox.clear()
        pos, end = 0, len(data)
        try:
            if not self.preface_seen:
                if end < len(w.PREFACE):
                    if not w.PREFACE.startswith(data):
                        raise w.H2Error(w.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                    self.inbox += data
                    return
                if not data.startswith(w.PREFACE):
                    raise w.H2Error(w.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                self.preface_seen = True
                pos = len(w.PREFACE)
            self.answered = 0
            first = True
            while end - pos >= 9 and not self.writing_paused:
                hi, lo, ftype, flags, stream_id = _HEAD.unpack_from(data, pos)
                length = hi << 16 | lo
                if length > w.DEFAULT_MAX_FRAME:
                    raise w.H2Error(w.FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE")
                if end - pos - 9 < length:
                    break
                payload = data[pos + 9:pos + 9 + length]
                pos += 9 + length
                self._frame(ftype, flags, stream_id & 0x7FFFFFFF, payload)
                if self.transport is None:  # closed while handling this frame
                    return
                if first and self.answered and end - pos >= 9:
                    # the first answer of a read leaves at once: the client handles it while we
                    # handle the rest (Envoy sends two requests that came in together in one write)
                    first = False
                    self._flush()
                elif len(self.out) >= _FLUSH_AFTER:  # a long read: let the transport push back
                    self._flush()
        except w.H2Error as exc:
            log.debug("HTTP/2 connection error %d: %s", exc.code, exc)
            self._fail(exc.code)
            return
        if pos < end:
            self.inbox += data[pos:]
        self._flush()

    # frames

    def _frame(self, ftype: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self.continuing is not None and ftype != w.CONTINUATION:
            raise w.H2Error(w.PROTOCOL_ERROR, "CONTINUATION expected")
        if ftype == w.DATA:
            self._data(flags, stream_id, payload)
        elif ftype == w.HEADERS:
            if stream_id == 0:
                raise w.H2Error(w.PROTOCOL_ERROR, "HEADERS on stream 0")
            block = w.unpad(flags, payload, priority=True)
            if flags & w.END_HEADERS:
                self._headers(stream_id, flags, block)
            else:
                self.continuing = (stream_id, flags, bytearray(block))
        elif ftype == w.CONTINUATION:
            if self.continuing is None or self.continuing[0] != stream_id:
                raise w.H2Error(w.PROTOCOL_ERROR, "unexpected CONTINUATION")
            block = self.continuing[2]
            block += payload
            if len(block) > self.blocks.max_block:
                raise w.H2Error(w.ENHANCE_YOUR_CALM, "header block too large")
            if flags & w.END_HEADERS:
                first_flags = self.continuing[1]
                self.continuing = None
                self._headers(stream_id, first_flags, bytes(block))
        elif ftype == w.WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif ftype == w.SETTINGS:
            self._settings(flags, stream_id, payload)
        elif ftype == w.PING:
            if stream_id or len(payload) != 8:
                raise w.H2Error(w.PROTOCOL_ERROR if stream_id else w.FRAME_SIZE_ERROR, "bad PING")
            if not flags & w.ACK:
                self.out.append(w.frame(w.PING, w.ACK, 0, payload))
        elif ftype == w.RST_STREAM:
            if stream_id == 0 or len(payload) != 4:
                raise w.H2Error(w.PROTOCOL_ERROR, "bad RST_STREAM")
            self._drop(stream_id)
        elif ftype == w.GOAWAY:
            self.close()
        elif ftype == w.PUSH_PROMISE:
            raise w.H2Error(w.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif ftype == w.PRIORITY:
            if stream_id == 0:
                raise w.H2Error(w.PROTOCOL_ERROR, "PRIORITY on stream 0")
        # other frame types are ignored (§5.5)

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise w.H2Error(w.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & w.ACK:
            if payload:
                raise w.H2Error(w.FRAME_SIZE_ERROR, "SETTINGS ack with a payload")
            return
        for key, value in w.parse_settings(payload):
            if key == w.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > w.MAX_WINDOW:
                    raise w.H2Error(w.FLOW_CONTROL_ERROR, "initial window too large")
                delta, self.initial_window = value - self.initial_window, value
                for sid in self.windows:  # §6.9.2: open streams' windows move by the difference
                    self.windows[sid] += delta
            elif key == w.SETTINGS_MAX_FRAME_SIZE:
                if not w.DEFAULT_MAX_FRAME <= value <= 2**24 - 1:
                    raise w.H2Error(w.PROTOCOL_ERROR, "bad max frame size")
                self.max_frame = value
        self.out.append(w.SETTINGS_ACK)
        self._resume()

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise w.H2Error(w.FRAME_SIZE_ERROR, "bad WINDOW_UPDATE")
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise w.H2Error(w.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > w.MAX_WINDOW:
                raise w.H2Error(w.FLOW_CONTROL_ERROR, "connection window overflow")
            self._resume()
        elif stream_id in self.windows:
            if increment == 0 or self.windows[stream_id] + increment > w.MAX_WINDOW:
                self._reset(stream_id, w.PROTOCOL_ERROR if increment == 0 else w.FLOW_CONTROL_ERROR)
                return
            self.windows[stream_id] += increment
            if stream_id in self.unsent:
                self._send_rest(stream_id)

    # requests

    def _headers(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self.blocks.decode(block)  # always: the decoder's table must follow the client's
        if stream_id in self.requests:  # trailers of a request: nothing in them is needed
            if not flags & w.END_STREAM:
                raise w.H2Error(w.PROTOCOL_ERROR, "trailers without END_STREAM")
            self._call(stream_id)
            return
        if not stream_id & 1:
            raise w.H2Error(w.PROTOCOL_ERROR, f"stream {stream_id} cannot be opened by a client")
        if stream_id <= self.highest:  # a stream answered or reset already (§5.1: stream error)
            self.out.append(w.rst_stream(stream_id, w.STREAM_CLOSED))
            return
        self.highest = stream_id
        if self.last_stream is not None or len(self.windows) >= _MAX_STREAMS:
            self.out.append(w.rst_stream(stream_id, w.REFUSED_STREAM))  # the client retries elsewhere
            return
        path = b""
        for name, value in headers:
            if name == b":path":
                path = value
                break
        self.requests[stream_id] = (path, bytearray())
        self.windows[stream_id] = self.initial_window
        if flags & w.END_STREAM:
            self._call(stream_id)

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise w.H2Error(w.PROTOCOL_ERROR, "DATA on stream 0")
        # flow control counts the whole frame, padding too
        self.conn_unacked += len(payload)
        if self.conn_unacked >= _WINDOW_TOP_UP:
            self.out.append(w.window_update(0, self.conn_unacked))
            self.conn_unacked = 0
        request = self.requests.get(stream_id)
        if request is None:
            if stream_id > self.highest:
                raise w.H2Error(w.PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a stream answered or reset already: the rest of its request is dropped
        data = w.unpad(flags, payload)
        body = request[1]
        body += data
        self.buffered += len(data)
        if len(body) > self.server.max_message + _PREFIX.size:
            self._forget(stream_id)
            self._answer(stream_id, None, _trailers(RESOURCE_EXHAUSTED, "message larger than the limit"))
            if not flags & w.END_STREAM:  # answered early: the client may stop sending (§8.1)
                self.out.append(w.rst_stream(stream_id, w.NO_ERROR))
            return
        if self.buffered > self.server.max_buffered:
            log.warning("gRPC client holds too many unfinished requests; closing its connection")
            self._fail(w.ENHANCE_YOUR_CALM)
            return
        if flags & w.END_STREAM:
            self._call(stream_id)
        elif payload:
            unacked = self.unacked.get(stream_id, 0) + len(payload)
            if unacked >= _WINDOW_TOP_UP:
                self.out.append(w.window_update(stream_id, unacked))
                unacked = 0
            self.unacked[stream_id] = unacked

    def _forget(self, stream_id: int) -> tuple[bytes, bytearray] | None:
        request = self.requests.pop(stream_id, None)
        if request is not None:
            self.buffered -= len(request[1])
            self.unacked.pop(stream_id, None)
        return request

    def _drop(self, stream_id: int) -> None:
        """Everything kept for a stream, its request and any answer still to send."""
        self._forget(stream_id)
        self.windows.pop(stream_id, None)
        self.unsent.pop(stream_id, None)

    def _reset(self, stream_id: int, code: int) -> None:
        self._drop(stream_id)
        self.out.append(w.rst_stream(stream_id, code))

    def _call(self, stream_id: int) -> None:
        request = self._forget(stream_id)
        if request is None:
            return
        path, body = request
        method = self.server.methods.get(path)
        if method is None:
            self._answer(stream_id, None, _trailers(UNIMPLEMENTED, f"unknown method {path.decode('latin-1')[:200]}"))
            return
        if len(body) < _PREFIX.size:
            self._answer(stream_id, None, _trailers(INVALID_ARGUMENT, "missing gRPC message"))
            return
        compressed, length = _PREFIX.unpack_from(body)
        if compressed:
            self._answer(stream_id, None, _trailers(UNIMPLEMENTED, "compressed messages are not supported"))
            return
        if length != len(body) - _PREFIX.size:
            self._answer(stream_id, None, _trailers(INVALID_ARGUMENT, "one message per unary call expected"))
            return
        try:
            result = method(bytes(body[_PREFIX.size:]))
        except GrpcError as exc:
            self._answer(stream_id, None, _trailers(exc.code, str(exc)))
            return
        except Exception:
            log.exception("gRPC method failed")
            self._answer(stream_id, None, _trailers(INTERNAL, "internal error"))
            return
        if isinstance(result, bytes):
            self._answer(stream_id, result, _OK_TRAILERS)
            return
        self.active.add(stream_id)
        task = asyncio.get_running_loop().create_task(self._run(stream_id, result))
        self.server.inflight.add(task)
        task.add_done_callback(self.server.inflight.discard)

    async def _run(self, stream_id: int, pending: Awaitable[bytes]) -> None:
        try:
            self._answer(stream_id, await pending, _OK_TRAILERS)
        except GrpcError as exc:
            self._answer(stream_id, None, _trailers(exc.code, str(exc)))
        except Exception:
            log.exception("gRPC method failed")
            self._answer(stream_id, None, _trailers(INTERNAL, "internal error"))
        finally:
            self.active.discard(stream_id)
            # leaves at once: the next awaited answer of this pass (a signature check, ~100 µs or
            # more) would hold it back, and the client would wait for the whole batch
            self._flush()
            if self.last_stream is not None and not self.active and not self.unsent:
                self.close()

    # responses

    def _answer(self, stream_id: int, payload: bytes | None, trailers: bytes) -> None:
        window = self.windows.get(stream_id)
        if self.transport is None or window is None:
            return  # the client reset the stream meanwhile
        self.answered += 1
        headers = _HEAD.pack(0, _RESPONSE_HEADERS_LEN, w.HEADERS, w.END_HEADERS, stream_id) + w.RESPONSE_HEADERS
        tail = _HEAD.pack(0, len(trailers), w.HEADERS, w.END_HEADERS | w.END_STREAM, stream_id) + trailers
        if payload is None:
            del self.windows[stream_id]
            self.out.append(headers + tail)
            return
        data = _PREFIX.pack(0, len(payload)) + payload
        n = len(data)
        if n <= window and n <= self.send_window and n <= self.max_frame:  # the common case: one write
            del self.windows[stream_id]
            self.send_window -= n
            self.out.append(headers + _HEAD.pack(n >> 16, n & 0xFFFF, w.DATA, 0, stream_id) + data + tail)
            return
        self.out.append(headers)
        self.unsent[stream_id] = (data, tail)
        self._send_rest(stream_id)

    def _send_rest(self, stream_id: int) -> None:
        """Send what flow control allows now; the rest goes when the client opens its window."""
        data, tail = self.unsent[stream_id]
        window = self.windows[stream_id]
        sent = 0
        while sent < len(data):
            size = min(window, self.send_window, self.max_frame, len(data) - sent)
            if size <= 0:
                break
            self.out.append(w.frame(w.DATA, 0, stream_id, data[sent:sent + size]))
            sent += size
            window -= size
            self.send_window -= size
        if sent < len(data):
            self.windows[stream_id] = window
            self.unsent[stream_id] = (data[sent:], tail)
            return
        self.out.append(tail)
        del self.unsent[stream_id], self.windows[stream_id]

    def _resume(self) -> None:
        for stream_id in list(self.unsent):
            if self.send_window <= 0:
                break
            self._send_rest(stream_id)

    def _flush(self) -> None:
        if self.transport is not None and self.out:
            out = self.out
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    # shutdown

    def drain(self) -> None:
        """GOAWAY: streams up to the last one received finish, later ones are refused."""
        if self.transport is None or self.last_stream is not None:
            return
        self.last_stream = self.highest
        self.out.append(w.goaway(self.last_stream, w.NO_ERROR))
        self._flush()
        if not self.active and not self.unsent:
            self.close()

    def _fail(self, code: int) -> None:
        """A connection error: GOAWAY with its code, then close."""
        self.out.append(w.goaway(self.highest, code))
        self.close()

    def close(self) -> None:
        self._flush()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
