"""One HTTP/2 connection (RFC 9113, h2c): frames in, requests to the application, answers
out with flow control both ways.

Why not the `h2` library: measured behind Envoy at one Check per millisecond, its state
machine and HPACK coding took ~0.5 ms of a ~0.7 ms answer. This carries what unary gRPC
needs and is as strict as RFC 9113 asks of a server; see `transport.h2.limits` for how one
connection is kept from holding the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from transport.h2 import frames as f
from transport.h2.answers import Answers
from transport.h2.control import Control
from transport.h2.headers import HeaderBlocks, check_trailers
from transport.h2.limits import Budget
from transport.h2.stream import RecentlyReset, SendWindows

if TYPE_CHECKING:
    from transport.h2.server import H2Server

log = logging.getLogger("transport.h2")

_FLUSH_AFTER = 64  # frames (or whole answers) gathered in one read before they are written
# A read's answers are written after its 1st, 3rd, 9th, ... answer and at its end: the
# client works on each batch while we handle the next, and the writes stay ~log(n) per read.
# One write for all but the first left Envoy waiting once per ~30 requests; growth 2, 3 and 5
# all brought that to ~0.01 (as behind nghttpd), at 0.38, 0.25 and 0.20 writes per Check
# (bench/README "The gRPC hit against its ceiling").
_FLUSH_GROWTH = 3
_HEAD = f.FRAME_HEAD
_WINDOW_TOP_UP = f.DEFAULT_WINDOW // 2  # our receive windows are topped up once this much is used
_PREFACE_LEN = len(f.PREFACE)


class Connection(Control, Answers, asyncio.Protocol):
    def __init__(self, server: H2Server) -> None:
        self.server = server
        limits = self.limits = server.limits
        self.app = server.app
        self.transport: asyncio.Transport | None = None
        self.inbox = bytearray()  # received bytes not yet a whole frame
        self.backlog: tuple[bytes, int] | None = None  # a read's rest, handled in the next turn
        self.preface_seen = False
        self.handshaken = False  # the client's first SETTINGS came
        self.reads = 0  # data_received calls: the idle sweep compares it between ticks
        self.quiet: tuple[int, float] | None = None  # (reads, since when) as the idle sweep last saw
        self.born = 0.0
        self.out: list[bytes] = []  # frames to write at the end of this pass
        self.blocks = HeaderBlocks(limits.max_header_block)
        self.continuing: tuple[int, int, bytearray, int] | None = None  # (stream, flags, block, dependency)
        self.frames_continued = 0  # CONTINUATION frames of the block being gathered
        self.requests: dict[int, tuple[bytes, bytearray]] = {}  # stream → (path, body so far)
        self.buffered = 0  # bytes in self.requests
        self.unacked: dict[int, int] = {}  # stream → DATA bytes received since its last WINDOW_UPDATE
        self.conn_unacked = 0
        # send side: the client's windows and frame size; every stream not finished has a window
        self.windows = SendWindows()
        self.send_window = f.DEFAULT_WINDOW
        self.max_frame = f.DEFAULT_MAX_FRAME
        self.table_update = False  # the client shrank its HPACK table: the next block says so
        self.unsent: dict[int, tuple[bytes, bytes]] = {}  # stream → (data, trailers) waiting for window
        self.conn_blocked: dict[int, None] = {}  # unsent streams held back by the connection's window
        self.active: set[int] = set()  # streams whose call is running
        self.highest = 0  # highest stream id the client opened
        self.reset_lately = RecentlyReset()
        self.last_stream: int | None = None  # set once draining: later streams are refused
        self.writing_paused = False
        self.answered = 0  # answers of the read being handled
        self.resets = Budget(*limits.resets)
        self.settings_budget = Budget(*limits.settings)
        self.pings = Budget(*limits.pings)
        self.idle_frames = Budget(*limits.idle_frames)
        self.window_updates = Budget(*limits.window_updates)
        self.window_updates_seen = 0  # WINDOW_UPDATE frames received
        self.data_frames = 0  # DATA frames sent: each earns `window_updates_per_data` of them

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.born = asyncio.get_running_loop().time()
        self.server.connection_made(self)
        streams = self.limits.advertised_streams or self.limits.max_streams
        self.transport.write(f.settings({f.SETTINGS_MAX_CONCURRENT_STREAMS: streams}))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.backlog = None
        for stream_id in list(self.requests):
            self._forget(stream_id)
        self.server.connection_lost(self)

    # Reading stops while answers wait to be written (a client that sends requests but does
    # not read would pile them up) or while a read's rest waits for its next turn.

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transport is not None and self.backlog is None:
            self.transport.resume_reading()
            if self.inbox:
                self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        if self.backlog is not None:  # read before the pause took effect: it comes after the rest
            rest, pos = self.backlog
            self.backlog = (rest[pos:] + data, 0)
            return
        if self.inbox:
            self.inbox += data
            data = bytes(self.inbox)
            self.inbox.clear()
        self._handle(data, 0)

    def _next_turn(self) -> None:
        if self.backlog is None or self.transport is None:
            return
        data, pos = self.backlog
        self.backlog = None
        self._handle(data, pos)
        if self.backlog is None and not self.writing_paused and self.transport is not None:
            self.transport.resume_reading()

    def _handle(self, data: bytes, pos: int) -> None:
        end = len(data)
        try:
            if not self.preface_seen:
                if end < _PREFACE_LEN:
                    if not f.PREFACE.startswith(data):
                        raise f.H2Error(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                    self.inbox += data
                    return
                if not data.startswith(f.PREFACE):
                    raise f.H2Error(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                self.preface_seen = True
                pos = _PREFACE_LEN
            self.answered = 0
            flush_at = 1  # answers of this read when the next write happens
            units = self.limits.turn_units
            while end - pos >= 9 and not self.writing_paused:
                if units <= 0:  # this turn's share: the rest waits for the next pass of the loop
                    self.backlog = (data, pos)
                    self.transport.pause_reading()
                    asyncio.get_running_loop().call_soon(self._next_turn)
                    self._flush()
                    return
                hi, lo, ftype, flags, stream_id = _HEAD.unpack_from(data, pos)
                length = hi << 16 | lo
                if length > f.DEFAULT_MAX_FRAME:
                    raise f.H2Error(f.FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE")
                if end - pos - 9 < length:
                    break
                payload = data[pos + 9:pos + 9 + length]
                pos += 9 + length
                units -= 1 + (length >> 11)
                self._frame(ftype, flags, stream_id & 0x7FFFFFFF, payload)
                if self.transport is None:  # closed while handling this frame
                    return
                if self.answered >= flush_at and end - pos >= 9:
                    # the first answer of a read leaves at once, then growing batches: the client
                    # handles them while we handle the rest (Envoy writes ~12 Checks at once)
                    flush_at = self.answered * _FLUSH_GROWTH
                    self._flush()
                elif len(self.out) >= _FLUSH_AFTER:  # a long read: let the transport push back
                    self._flush()
        except f.H2Error as exc:
            log.debug("HTTP/2 connection error %d: %s", exc.code, exc)
            self._fail(exc.code)
            return
        if pos < end:
            self.inbox += data[pos:]
        self._flush()
        if self.last_stream is not None:  # draining: the last answer may have left
            self._maybe_close()

    # frames

    def _frame(self, ftype: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self.continuing is not None and ftype != f.CONTINUATION:
            raise f.H2Error(f.PROTOCOL_ERROR, "CONTINUATION expected")
        if not self.handshaken and ftype != f.SETTINGS:
            raise f.H2Error(f.PROTOCOL_ERROR, "the preface must be followed by SETTINGS")
        if ftype == f.DATA:
            self._data(flags, stream_id, payload)
        elif ftype == f.HEADERS:
            self._headers_frame(flags, stream_id, payload)
        elif ftype == f.CONTINUATION:
            self._continuation(flags, stream_id, payload)
        elif ftype == f.WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif ftype == f.SETTINGS:
            self._settings(flags, stream_id, payload)
        elif ftype == f.PING:
            if stream_id:
                raise f.H2Error(f.PROTOCOL_ERROR, "PING on a stream")
            if len(payload) != 8:
                raise f.H2Error(f.FRAME_SIZE_ERROR, "PING of other than 8 bytes")
            if not flags & f.ACK:
                self._spend(self.pings, "PING")
                self.out.append(f.frame(f.PING, f.ACK, 0, payload))
        elif ftype == f.RST_STREAM:
            self._rst_stream(stream_id, payload)
        elif ftype == f.GOAWAY:
            self._goaway(stream_id, payload)
        elif ftype == f.PUSH_PROMISE:
            raise f.H2Error(f.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif ftype == f.PRIORITY:
            self._priority(stream_id, payload)
        else:  # other frame types are ignored (§5.5), within the budget of frames without work
            self._spend(self.idle_frames, "frames without a request")

    # requests

    def _headers_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.H2Error(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        block = f.unpad(flags, payload, priority=True)
        if flags & f.END_HEADERS:
            self._headers(stream_id, flags, block, f.dependency(flags, payload) if flags & f.PRIORITY_FLAG else 0)
        else:
            if not block:
                self._spend(self.idle_frames, "empty frames")
            self.continuing = (stream_id, flags, bytearray(block), f.dependency(flags, payload))
            self.frames_continued = 0

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        continuing = self.continuing
        if continuing is None or continuing[0] != stream_id:
            raise f.H2Error(f.PROTOCOL_ERROR, "unexpected CONTINUATION")
        block = continuing[2]
        block += payload
        if len(block) > self.limits.max_header_block:
            raise f.H2Error(f.ENHANCE_YOUR_CALM, "header block too large")
        if not payload and not flags & f.END_HEADERS:
            self._spend(self.idle_frames, "empty frames")
        if flags & f.END_HEADERS:
            self.continuing = None
            self._headers(stream_id, continuing[1], bytes(block), continuing[3])
        else:
            self.frames_continued += 1
            if self.frames_continued > self.limits.max_continuations:
                raise f.H2Error(f.ENHANCE_YOUR_CALM, "too many CONTINUATION frames")

    def _headers(self, stream_id: int, flags: int, block: bytes, depends_on: int) -> None:
        request = self.requests.get(stream_id)
        if request is not None:  # trailers of a request: nothing in them is needed
            headers = self.blocks.decode(block)
            if not flags & f.END_STREAM:
                raise f.H2Error(f.PROTOCOL_ERROR, "trailers without END_STREAM")
            try:
                check_trailers(headers)
            except f.StreamError as exc:
                self._reset(stream_id, exc.code)
                return
            self._ready(stream_id)
            return
        if not stream_id & 1:
            raise f.H2Error(f.PROTOCOL_ERROR, f"stream {stream_id} cannot be opened by a client")
        if stream_id <= self.highest:
            self.blocks.decode(block)  # the decoder's table must follow the client's
            if stream_id in self.windows:  # half-closed (remote): its request ended already (§5.1)
                self._reset(stream_id, f.STREAM_CLOSED)
                return
            if stream_id in self.reset_lately:  # sent before the client saw our reset
                return
            raise f.H2Error(f.PROTOCOL_ERROR, f"stream {stream_id} is not above the last one opened")
        head = self.blocks.request(block)
        self.highest = stream_id
        if depends_on == stream_id:
            self._reset(stream_id, f.PROTOCOL_ERROR)  # §5.3.1
            return
        if self.last_stream is not None or len(self.windows) >= self.limits.max_streams:
            self._reset(stream_id, f.REFUSED_STREAM)  # the client retries elsewhere
            return
        if head.problem and not head.http_status:  # malformed (§8.1.1)
            log.debug("malformed request: %s", head.problem)
            self._reset(stream_id, f.PROTOCOL_ERROR)
            return
        self.windows[stream_id] = self.windows.fresh
        if head.http_status:  # not a gRPC request: answered before any call
            self.app.refuse(self, stream_id, head)
            if not flags & f.END_STREAM:  # answered early: the client may stop sending (§8.1)
                self.out.append(f.rst_stream(stream_id, f.NO_ERROR))
                self.reset_lately.add(stream_id)
            return
        if flags & f.END_STREAM:
            self.app.call(self, stream_id, head.path, b"")
            return
        self.requests[stream_id] = (head.path, bytearray())

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.H2Error(f.PROTOCOL_ERROR, "DATA on stream 0")
        # flow control counts the whole frame, padding too
        self.conn_unacked += len(payload)
        if self.conn_unacked >= _WINDOW_TOP_UP:
            self.out.append(f.window_update(0, self.conn_unacked))
            self.conn_unacked = 0
        request = self.requests.get(stream_id)
        if request is None:
            if self._idle(stream_id):
                raise f.H2Error(f.PROTOCOL_ERROR, "DATA on an idle stream")
            if stream_id in self.windows:  # half-closed (remote): its request ended already (§5.1)
                self._reset(stream_id, f.STREAM_CLOSED)
            return  # a stream answered or reset already: the rest of its request is dropped
        data = f.unpad(flags, payload)
        body = request[1]
        if flags & f.END_STREAM and not body:  # the whole message in one frame: no copy kept
            del self.requests[stream_id]
            self.unacked.pop(stream_id, None)
            self.app.call(self, stream_id, request[0], data)
            return
        if not payload and not flags & f.END_STREAM:
            self._spend(self.idle_frames, "empty frames")
        n = len(data)
        body += data
        self.buffered += n
        server = self.server
        server.buffered += n
        if len(body) > self.limits.max_message + 5:
            self._forget(stream_id)
            self.app.too_large(self, stream_id)
            if not flags & f.END_STREAM:  # answered early: the client may stop sending (§8.1)
                self.out.append(f.rst_stream(stream_id, f.NO_ERROR))
                self.reset_lately.add(stream_id)
            return
        if self.buffered > self.limits.max_buffered:
            server.warn("HTTP/2 client holds too many unfinished requests; closing its connection")
            self._fail(f.ENHANCE_YOUR_CALM)
            return
        if server.buffered > self.limits.max_buffered_total:  # all connections together
            server.warn("unfinished gRPC requests past grpc_max_buffered_bytes; refusing streams")
            self._reset(stream_id, f.REFUSED_STREAM)
            return
        if flags & f.END_STREAM:
            self._ready(stream_id)
        elif payload:
            unacked = self.unacked.get(stream_id, 0) + len(payload)
            if unacked >= _WINDOW_TOP_UP:
                self.out.append(f.window_update(stream_id, unacked))
                unacked = 0
            self.unacked[stream_id] = unacked

    def _ready(self, stream_id: int) -> None:
        """The request is whole: the application answers it."""
        request = self._forget(stream_id)
        if request is not None:
            self.app.call(self, stream_id, request[0], request[1])

    def _forget(self, stream_id: int) -> tuple[bytes, bytearray] | None:
        request = self.requests.pop(stream_id, None)
        if request is not None:
            n = len(request[1])
            self.buffered -= n
            self.server.buffered -= n
            self.unacked.pop(stream_id, None)
        return request

    def _drop(self, stream_id: int) -> None:
        """Everything kept for a stream, its request and any answer still to send."""
        self._forget(stream_id)
        self.windows.pop(stream_id, None)
        self.unsent.pop(stream_id, None)
        self.conn_blocked.pop(stream_id, None)

    def _reset(self, stream_id: int, code: int) -> None:
        self._spend(self.resets, "stream resets")
        self._drop(stream_id)
        self.reset_lately.add(stream_id)
        self.out.append(f.rst_stream(stream_id, code))
        self._maybe_close()
