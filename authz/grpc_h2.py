"""gRPC unary calls served straight on HTTP/2 (the `h2` library) and the worker's event loop.

Why not grpc.aio, measured on 2 cores with h2load and a servicer returning a fixed answer:
grpc.aio's core runs a poller thread beside the event loop, so one worker already takes
more than a core and a second worker adds ~2 % (4,517 → 4,608 req/s), where this transport
gives 5,182 → 9,326. It carries only what ext_authz and health probes need: unary calls,
h2c (no TLS: Envoy and the mesh speak plain HTTP/2 to the sidecar), no compression.
`grpc_server: grpcio` in the settings still selects grpc.aio.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Awaitable, Callable

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset,
                       WindowUpdated)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

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

# header checks off: only :path is read, and h2 still refuses malformed frames and HPACK
# (the checks were ~5 % of a Check's CPU)
_CONFIG = H2Configuration(client_side=False, header_encoding=None, validate_outbound_headers=False,
                          normalize_outbound_headers=False, validate_inbound_headers=False,
                          normalize_inbound_headers=False)
_RESPONSE_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
_OK_TRAILERS = [(b"grpc-status", b"0")]
_PREFIX = struct.Struct(">BI")  # compressed flag, message length
_MAX_STREAMS = 1024


def _trailers(code: int, message: str) -> list[tuple[bytes, bytes]]:
    # grpc-message is percent-encoded UTF-8: printable ASCII but '%' stays as it is
    text = "".join(c if " " <= c <= "~" and c != "%" else "".join(f"%{b:02X}" for b in c.encode())
                   for c in message)
    return [(b"grpc-status", str(code).encode()), (b"grpc-message", text.encode("ascii"))]


class GrpcH2Server:
    def __init__(self, methods: dict[str, Method], max_message: int = 1 << 20) -> None:
        self.methods = {path.encode(): method for path, method in methods.items()}
        self.max_message = max_message
        # unfinished requests one connection may hold: streams × max_message would be a GiB
        self.max_buffered = 8 * max_message
        self.connections: set[_Connection] = set()
        self.inflight: set[asyncio.Task] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        # SO_REUSEPORT: every --workers process listens on the same port
        self._server = await loop.create_server(lambda: _Connection(self), host or None, port,
                                                reuse_port=True, backlog=2048)

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
        self.h2 = H2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[bytes, bytearray]] = {}  # stream → (path, body so far)
        self.buffered = 0  # bytes in self.requests
        self.unsent: dict[int, tuple[bytes, list]] = {}  # stream → (data, trailers) waiting for window
        self.active: set[int] = set()  # streams whose call is running
        self.last_stream: int | None = None  # set once draining: later streams are refused
        self.flush_soon = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.h2.local_settings = Settings(client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: _MAX_STREAMS})
        self.h2.initiate_connection()
        self.transport.write(self.h2.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:
            log.debug("HTTP/2 protocol error: %s", exc)
            self._flush()
            self.close()
            return
        for event in events:
            if self.transport is None:  # closed while handling an earlier event
                return
            if isinstance(event, DataReceived):
                self._body(event)
            elif isinstance(event, RequestReceived):
                self._headers(event)
            elif isinstance(event, StreamEnded):
                self._call(event.stream_id)
            elif isinstance(event, WindowUpdated):
                for stream_id in ([event.stream_id] if event.stream_id else list(self.unsent)):
                    if stream_id in self.unsent:
                        self._send_rest(stream_id)
            elif isinstance(event, StreamReset):
                self._forget(event.stream_id)
                self.unsent.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self.close()
                return
        self._flush()

    # requests

    def _headers(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        if self.last_stream is not None and stream_id > self.last_stream:
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)  # draining: the client retries elsewhere
            return
        path = b""
        for name, value in event.headers:
            if name == b":path":
                path = value
                break
        self.requests[stream_id] = (path, bytearray())

    def _body(self, event: DataReceived) -> None:
        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        request = self.requests.get(event.stream_id)
        if request is None:
            return
        body = request[1]
        body += event.data
        self.buffered += len(event.data)
        if len(body) > self.server.max_message + _PREFIX.size:
            self._forget(event.stream_id)
            self._answer(event.stream_id, None, _trailers(RESOURCE_EXHAUSTED, "message larger than the limit"))
        elif self.buffered > self.server.max_buffered:
            log.warning("gRPC client holds too many unfinished requests; closing its connection")
            self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
            self.close()

    def _forget(self, stream_id: int) -> tuple[bytes, bytearray] | None:
        request = self.requests.pop(stream_id, None)
        if request is not None:
            self.buffered -= len(request[1])
        return request

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
            if not self.flush_soon:  # answers finished in one loop pass leave in one write
                self.flush_soon = True
                asyncio.get_running_loop().call_soon(self._flush)
            if self.last_stream is not None and not self.active and not self.unsent:
                self.close()

    # responses

    def _answer(self, stream_id: int, payload: bytes | None, trailers: list) -> None:
        if self.transport is None:
            return
        try:
            self.h2.send_headers(stream_id, _RESPONSE_HEADERS)
        except ProtocolError:
            return  # the client reset the stream meanwhile
        data = _PREFIX.pack(0, len(payload)) + payload if payload is not None else b""
        self.unsent[stream_id] = (data, trailers)
        self._send_rest(stream_id)

    def _send_rest(self, stream_id: int) -> None:
        """Send what flow control allows now; the rest goes when the client opens its window."""
        data, trailers = self.unsent[stream_id]
        h2 = self.h2
        try:
            while data:
                size = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size, len(data))
                if size <= 0:
                    self.unsent[stream_id] = (data, trailers)
                    return
                h2.send_data(stream_id, data[:size])
                data = data[size:]
            h2.send_headers(stream_id, trailers, end_stream=True)
        except ProtocolError:
            pass  # reset by the client meanwhile
        del self.unsent[stream_id]

    def _flush(self) -> None:
        self.flush_soon = False
        if self.transport is not None:
            out = self.h2.data_to_send()
            if out:
                self.transport.write(out)

    # shutdown

    def drain(self) -> None:
        """GOAWAY: streams up to the last one received finish, later ones are refused. Sent
        as a frame of our own, because h2's close_connection would refuse the answers still
        to come."""
        if self.transport is None or self.last_stream is not None:
            return
        self.last_stream = self.h2.highest_inbound_stream_id
        self._flush()
        self.transport.write(GoAwayFrame(stream_id=0, last_stream_id=self.last_stream, error_code=0).serialize())
        if not self.active and not self.unsent:
            self.close()

    def close(self) -> None:
        self._flush()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
