"""The h2 gRPC transport, called by a real gRPC client (grpcio): statuses, limits, flow
control, compression, drain."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated
from hpack import Decoder, Encoder

from transport.grpc.unary import INVALID_ARGUMENT, GrpcError, GrpcH2Server
from transport.h2 import frames as w
from transport.h2.connection import Connection
from transport.h2.limits import Limits
from tests.support.net import free_port

pytestmark = pytest.mark.asyncio


def echo(message: bytes) -> bytes:
    return message[::-1]


async def slow(message: bytes) -> bytes:
    await asyncio.sleep(float(message.decode()))
    return b"late"


def refuse(message: bytes) -> bytes:
    raise GrpcError(INVALID_ARGUMENT, "no such thing")


def crash(message: bytes) -> bytes:
    raise RuntimeError("bug")


def big(message: bytes) -> bytes:
    return bytes(int(message.decode()))


@pytest.fixture
async def server():
    port = free_port()
    srv = GrpcH2Server({"/t.T/Echo": echo, "/t.T/Slow": slow, "/t.T/Refuse": refuse, "/t.T/Crash": crash,
                        "/t.T/Big": big}, max_message=64 * 1024)
    await srv.start("127.0.0.1", port)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield srv, channel
    await channel.close()
    await srv.stop(0)


def call(channel, name: str, **kwargs):
    return channel.unary_unary(f"/t.T/{name}", request_serializer=None, response_deserializer=None, **kwargs)


async def test_answers_now_and_later(server):
    _, channel = server
    assert await call(channel, "Echo")(b"abc", timeout=5) == b"cba"
    assert await call(channel, "Echo")(b"", timeout=5) == b""
    assert await call(channel, "Slow")(b"0.01", timeout=5) == b"late"


@pytest.mark.parametrize("name, code, detail", [
    ("Nope", grpc.StatusCode.UNIMPLEMENTED, "unknown method /t.T/Nope"),
    ("50%off", grpc.StatusCode.UNIMPLEMENTED, "unknown method /t.T/50%off"),  # grpc-message is percent-encoded
    ("Refuse", grpc.StatusCode.INVALID_ARGUMENT, "no such thing"),
    ("Crash", grpc.StatusCode.INTERNAL, "internal error"),
])
async def test_errors_are_grpc_statuses(server, name, code, detail):
    _, channel = server
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(channel, name)(b"x", timeout=5)
    assert err.value.code() == code and err.value.details() == detail


async def test_message_over_the_limit_is_resource_exhausted_and_the_connection_lives_on(server):
    _, channel = server
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(channel, "Echo")(bytes(200 * 1024), timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await call(channel, "Echo")(b"ok", timeout=5) == b"ko"


async def test_compressed_messages_are_refused(server):
    _, channel = server
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(channel, "Echo")(b"a" * 1000, timeout=5, compression=grpc.Compression.Gzip)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_answers_larger_than_the_flow_control_window_all_arrive(server):
    # 40 concurrent 60 KB answers on one connection to a client keeping the initial 64 KB
    # window (no BDP probing): most of them wait for the client's WINDOW_UPDATEs
    srv, _ = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}", options=[("grpc.http2.bdp_probe", 0)]) as channel:
        answers = await asyncio.gather(*(call(channel, "Big")(b"61440", timeout=10) for _ in range(40)))
    assert [len(a) for a in answers] == [61440] * 40


async def test_many_concurrent_calls_on_one_connection(server):
    _, channel = server
    messages = [str(i).encode() for i in range(3000)]
    answers = await asyncio.gather(*(call(channel, "Echo")(m, timeout=20) for m in messages))
    assert answers == [m[::-1] for m in messages]


async def test_stop_lets_calls_in_flight_finish_and_refuses_new_ones(server):
    srv, channel = server
    in_flight = asyncio.ensure_future(call(channel, "Slow")(b"0.5", timeout=5))
    await asyncio.sleep(0.2)
    await srv.stop(grace=5)
    assert await in_flight == b"late"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(channel, "Echo")(b"x", timeout=2, wait_for_ready=False)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_hoarding_unfinished_requests_is_cut_off(server):
    # streams that never end, each under the message limit, together past the connection's cap
    srv, _ = server
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    events: list = []

    async def exchange() -> bool:
        writer.write(client.data_to_send())
        data = await asyncio.wait_for(reader.read(65536), timeout=5)
        events.extend(client.receive_data(data) if data else [])
        return bool(data) and not any(isinstance(e, ConnectionTerminated) for e in events)

    alive = True
    for _ in range(12):  # 12 × 60 KB > 8 × 64 KB
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                                        (":path", "/t.T/Echo"), ("content-type", "application/grpc")])
        left = 60 * 1024
        while left and alive:
            size = min(left, client.local_flow_control_window(stream_id), client.max_outbound_frame_size)
            if size:
                client.send_data(stream_id, bytes(size))
                left -= size
            else:
                alive = await exchange()  # the server's WINDOW_UPDATEs
        if not alive:
            break
    while alive:
        alive = await exchange()
    assert any(isinstance(e, ConnectionTerminated) and e.error_code == ErrorCodes.ENHANCE_YOUR_CALM for e in events)
    writer.close()


class RawClient:
    """Frames written and read by hand, for what a well-behaved client library never sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder = Encoder()

    @classmethod
    async def connect(cls, port: int, preface: bytes = w.PREFACE + w.settings({})) -> "RawClient":
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        client.writer.write(preface)
        return client

    def request_block(self, path: str = "/t.T/Echo") -> bytes:
        return self.encoder.encode([(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                                    (":path", path), ("content-type", "application/grpc")])

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def frame(self) -> tuple[int, int, int, bytes] | None:
        """(type, flags, stream, payload), or None once the server closed."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(9), timeout=5)
        except asyncio.IncompleteReadError:
            return None
        hi, lo, ftype, flags, stream_id = w.FRAME_HEAD.unpack(head)
        payload = await self.reader.readexactly(hi << 16 | lo)
        return ftype, flags, stream_id, payload

    async def until(self, ftype: int, stream_id: int | None = None) -> tuple[int, int, int, bytes] | None:
        while (f := await self.frame()) is not None:
            if f[0] == ftype and (stream_id is None or f[2] == stream_id):
                return f
        return None

    async def answer(self, stream_id: int) -> tuple[bytes, list]:
        """The DATA of one stream and its decoded trailers."""
        data, decoder = b"", Decoder()
        blocks = []
        while (f := await self.frame()) is not None:
            ftype, flags, sid, payload = f
            if sid != stream_id:
                continue
            if ftype == w.DATA:
                data += payload
            elif ftype == w.HEADERS:
                blocks.append(decoder.decode(payload, raw=True))
                if flags & w.END_STREAM:
                    return data, blocks[-1]
        raise AssertionError("the server closed before answering")


def message(body: bytes) -> bytes:
    return b"\0" + len(body).to_bytes(4, "big") + body


async def test_ping_is_answered_and_padded_split_requests_are_read(server):
    srv, _ = server
    c = await RawClient.connect(srv.port)
    c.send(w.frame(w.PING, 0, 0, b"12345678"))
    assert (await c.until(w.PING))[1:] == (w.ACK, 0, b"12345678")
    block = c.request_block()
    # HEADERS (padded, with priority) + CONTINUATION, then padded DATA
    c.send(w.frame(w.HEADERS, w.PADDED | w.PRIORITY_FLAG, 1, b"\x03" + bytes(5) + block[:7] + b"pad"),
           w.frame(w.CONTINUATION, w.END_HEADERS, 1, block[7:]),
           w.frame(w.DATA, w.PADDED | w.END_STREAM, 1, b"\x02" + message(b"abc") + b"\0\0"))
    data, trailers = await c.answer(1)
    assert data == message(b"cba") and (b"grpc-status", b"0") in trailers


@pytest.mark.parametrize("opening, code", [
    (b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", w.PROTOCOL_ERROR),
    (w.PREFACE + w.frame(w.DATA, 0, 0, b"x"), w.PROTOCOL_ERROR),  # DATA on stream 0
    (w.PREFACE + w.frame(w.PING, 0, 0, bytes(20000)), w.FRAME_SIZE_ERROR),  # past the 16 KiB frame limit
    (w.PREFACE + w.frame(w.PING, 0, 0, bytes(8)), w.PROTOCOL_ERROR),  # the preface's SETTINGS missing
    (w.PREFACE + w.settings({}) + w.frame(w.HEADERS, w.END_HEADERS, 1, b"\xff\xff\xff\xff"), w.COMPRESSION_ERROR),
    (w.PREFACE + w.settings({}) + w.frame(w.HEADERS, 0, 1, b"\x82") + w.frame(w.PING, 0, 0, bytes(8)),
     w.PROTOCOL_ERROR),
    (w.PREFACE + w.frame(w.SETTINGS, 0, 0, b"\x00\x04\xff\xff\xff\xff"), w.FLOW_CONTROL_ERROR),
])
async def test_connection_errors_end_with_goaway(server, opening, code):
    srv, channel = server
    c = await RawClient.connect(srv.port, preface=opening)
    goaway = await c.until(w.GOAWAY)
    assert goaway is not None and int.from_bytes(goaway[3][4:8], "big") == code
    assert await c.frame() is None  # and the connection is closed
    assert await call(channel, "Echo")(b"ok", timeout=5) == b"ko"  # other connections unaffected


async def test_streams_past_the_concurrency_limit_are_refused(server):
    srv, _ = server
    c = await RawClient.connect(srv.port)
    limit = 1024
    for i in range(limit + 1):  # requests that never end
        c.send(w.frame(w.HEADERS, w.END_HEADERS, 2 * i + 1, c.request_block()))
    refused = await c.until(w.RST_STREAM)
    assert refused[2] == 2 * limit + 1 and int.from_bytes(refused[3], "big") == w.REFUSED_STREAM
    c.send(w.frame(w.DATA, w.END_STREAM, 1, message(b"first")))  # a slot opens when one finishes
    assert (await c.answer(1))[0] == message(b"tsrif")
    c.send(w.frame(w.HEADERS, w.END_HEADERS, 2 * limit + 3, c.request_block()),
           w.frame(w.DATA, w.END_STREAM, 2 * limit + 3, message(b"next")))
    assert (await c.answer(2 * limit + 3))[0] == message(b"txen")


async def test_a_smaller_window_from_settings_holds_answers_back(server):
    # the client allows 10 bytes per stream: the 1000-byte answer comes as the window opens
    srv, _ = server
    c = await RawClient.connect(srv.port, preface=w.PREFACE + w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 10}))
    c.send(w.frame(w.HEADERS, w.END_HEADERS, 1, c.request_block("/t.T/Big")),
           w.frame(w.DATA, w.END_STREAM, 1, message(b"995")))
    got = b""
    while len(got) < 10:
        f = await c.frame()
        if f[0] == w.DATA:
            got += f[3]
    assert len(got) == 10
    c.send(w.window_update(1, 990))
    data, trailers = await c.answer(1)
    assert got + data == message(bytes(995)) and (b"grpc-status", b"0") in trailers


async def test_headers_reusing_a_finished_stream_id_end_the_connection(server):
    # §5.1.1: a new stream's id must be above every id the client used: going back is a
    # connection error, and the calls already answered stay answered
    srv, channel = server
    c = await RawClient.connect(srv.port)
    c.send(w.frame(w.HEADERS, w.END_HEADERS, 1, c.request_block()), w.frame(w.DATA, w.END_STREAM, 1, message(b"ab")))
    assert (await c.answer(1))[0] == message(b"ba")
    c.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1, c.request_block()))  # stream 1 is closed
    goaway = await c.until(w.GOAWAY)
    assert w.error_code(goaway[3], 4) == w.PROTOCOL_ERROR and w.u32(goaway[3]) == 1
    assert await call(channel, "Echo")(b"ok", timeout=5) == b"ko"


async def test_a_client_that_does_not_read_is_not_answered_into_memory(server):
    # 400 requests for 50 KB answers (20 MB), written without reading an answer and with flow
    # control wide open: the server stops reading requests once its answers wait to be sent
    # (the kernel's socket buffers take a few MB first), instead of buffering all of them
    srv, _ = server
    c = await RawClient.connect(srv.port, preface=w.PREFACE + w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 2**31 - 1}))
    c.send(w.window_update(0, 2**31 - 1 - 65535))
    n = 400
    for i in range(n):
        sid = 2 * i + 1
        c.send(w.frame(w.HEADERS, w.END_HEADERS, sid, c.request_block("/t.T/Big")),
               w.frame(w.DATA, w.END_STREAM, sid, message(b"50000")))
    await asyncio.wait_for(_until(lambda: len(srv.connections) == 1), 10)
    (connection,) = srv.connections
    transport, limit = connection.transport, 4 * 1024 * 1024

    async def settled() -> None:  # the server stopped reading, or its answers piled up
        while transport.is_reading() and transport.get_write_buffer_size() < limit:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(settled(), 10)
    assert not transport.is_reading() and transport.get_write_buffer_size() < limit
    answered = 0
    while answered < n:  # and once the client reads, every answer comes
        f = await c.frame()
        if f[0] == w.HEADERS and f[1] & w.END_STREAM:
            answered += 1
    assert answered == n


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False


async def test_the_first_answer_of_a_read_is_written_before_the_rest_is_handled():
    # Envoy sends two Checks that arrived together in one write: the first answer must not
    # wait for the second Check (the proxy works on it meanwhile, on another core)
    transport = RecordingTransport()
    seen_by_second: list[bytes] = []

    def record(message: bytes) -> bytes:
        if message == b"second":
            seen_by_second.append(b"".join(transport.writes))
        return message.upper()

    connection = Connection(GrpcH2Server({"/t.T/Echo": record}))
    connection.connection_made(transport)
    encoder = Encoder()
    block = encoder.encode([(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", "/t.T/Echo"),
                            ("content-type", "application/grpc")])
    connection.data_received(w.PREFACE + w.settings({})
                             + w.frame(w.HEADERS, w.END_HEADERS, 1, block) + w.frame(w.DATA, w.END_STREAM, 1, message(b"first"))
                             + w.frame(w.HEADERS, w.END_HEADERS, 3, block) + w.frame(w.DATA, w.END_STREAM, 3, message(b"second")))
    assert len(seen_by_second) == 1 and message(b"FIRST") in seen_by_second[0]
    assert message(b"SECOND") not in seen_by_second[0]
    assert message(b"SECOND") in b"".join(transport.writes)


async def test_the_answers_of_a_long_read_leave_in_growing_batches():
    # Envoy writes a dozen Checks at once: answers leave after the 1st, 3rd and 9th, then the
    # rest at the end of the read, so the proxy always has answers to work on while we handle
    # the next ones (one write for all but the first left it idle) and the writes stay few
    transport = RecordingTransport()
    connection = Connection(GrpcH2Server({"/t.T/Echo": lambda m: m.upper()}))
    connection.connection_made(transport)
    block = Encoder().encode([(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", "/t.T/Echo"),
                              ("content-type", "application/grpc")])
    settings_written = len(transport.writes)
    connection.data_received(w.PREFACE + w.settings({}) + b"".join(
        w.frame(w.HEADERS, w.END_HEADERS, 2 * i + 1, block)
        + w.frame(w.DATA, w.END_STREAM, 2 * i + 1, message(b"c%02d" % i)) for i in range(12)))
    batches = [[i for i in range(12) if message(b"C%02d" % i) in write]
               for write in transport.writes[settings_written:]]
    assert [b for b in batches if b] == [[0], [1, 2], [3, 4, 5, 6, 7, 8], [9, 10, 11]]


async def test_an_answer_that_needed_a_wait_leaves_before_the_next_one_is_worked_on():
    # two cache misses of one read: the first answer must not wait for the second's signature
    # check (~100 µs of CPU in the same loop pass), or the proxy idles through every batch
    transport = RecordingTransport()
    seen_by_second: list[bytes] = []

    async def verify(message: bytes) -> bytes:
        if message == b"second":
            seen_by_second.append(b"".join(transport.writes))
        return message.upper()

    connection = Connection(GrpcH2Server({"/t.T/Verify": verify}))
    connection.connection_made(transport)
    block = Encoder().encode([(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", "/t.T/Verify"),
                              ("content-type", "application/grpc")])
    connection.data_received(w.PREFACE + w.settings({})
                             + w.frame(w.HEADERS, w.END_HEADERS, 1, block) + w.frame(w.DATA, w.END_STREAM, 1, message(b"first"))
                             + w.frame(w.HEADERS, w.END_HEADERS, 3, block) + w.frame(w.DATA, w.END_STREAM, 3, message(b"second")))
    for _ in range(100):  # a few loop passes run both calls
        if not connection.active:
            break
        await asyncio.sleep(0)
    assert len(seen_by_second) == 1 and message(b"FIRST") in seen_by_second[0]
    assert message(b"SECOND") in b"".join(transport.writes)


async def test_a_client_acknowledging_every_answer_is_not_cut_off_but_a_window_update_flood_is():
    """grpcio sends about two WINDOW_UPDATE frames per answer it reads: they are earned by the
    DATA frames sent (as Envoy counts them), so a busy client is never taken for a flood, while
    WINDOW_UPDATEs that acknowledge nothing still draw on the budget. A small budget here
    stands for the default one a grpcio client used up after ~6,000 Checks in 3 s."""
    port = free_port()
    srv = GrpcH2Server({"/t.T/Echo": echo}, limits=Limits(window_updates=(100, 1.0)))
    await srv.start("127.0.0.1", port)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for _ in range(6):
                messages = [str(i).encode() for i in range(200)]
                answers = await asyncio.gather(*(call(channel, "Echo")(m, timeout=20) for m in messages))
                assert answers == [m[::-1] for m in messages]
        flood = await RawClient.connect(port)
        flood.send(*(w.window_update(0, 1) for _ in range(300)))
        goaway = await flood.until(w.GOAWAY)
        assert goaway is not None and int.from_bytes(goaway[3][4:8], "big") == w.ENHANCE_YOUR_CALM
    finally:
        await srv.stop(0)
