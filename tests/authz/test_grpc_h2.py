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

from authz.grpc_h2 import INVALID_ARGUMENT, GrpcError, GrpcH2Server
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
