"""Canaries: every non-public member of uvicorn, redis-py and hpack the project reads, in one
place (docs/architecture.md, rule 9). When an upgrade moves one, a test here fails and names
the member and the module that reads it; pyproject.toml bounds each library below the first
version not checked. Checked against uvicorn 0.54.0, redis 8.1.0, hpack 4.2.0.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
import uvicorn
import uvicorn.server
from hpack import Decoder
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool
from redis.asyncio.sentinel import Sentinel
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PROTOCOL = "transport/http/protocol.py"  # subclasses HttpToolsProtocol and answers checks inline
LIFECYCLE = "transport/http/face.py"  # runs uvicorn.Server without its listener or signals
CLUSTER_TRIP = "sidecar/store/cluster_trip.py"  # one round trip per Cluster node
REDIS_STORE = "sidecar/store/redis_store.py"  # one round trip on a plain Redis pool
HEADERS = "transport/h2/headers.py"  # the header-block cache watches the HPACK dynamic table


def moved(owner: object, member: str, reader: str) -> str:
    name = getattr(owner, "__qualname__", type(owner).__qualname__)
    return f"{name}.{member} is gone or changed (an upgrade?): {reader} reads it and needs updating"


# -- uvicorn ------------------------------------------------------------------------------------

class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""

    def write(self, data) -> None:
        self.written += bytes(data)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 5000) if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope, receive, send) -> None:
    pass


def _protocol(loop: asyncio.AbstractEventLoop) -> HttpToolsProtocol:
    """uvicorn's protocol built as the lifecycle builds it (config, server_state, app_state)."""
    config = uvicorn.Config(_app, lifespan="off", log_config=None, proxy_headers=False)
    config.load()
    server = uvicorn.Server(config)
    lifespan = config.lifespan_class(config)
    return HttpToolsProtocol(config=config, server_state=server.server_state, app_state=lifespan.state, _loop=loop)


@pytest.mark.parametrize("method", ["connection_made", "connection_lost", "on_message_begin", "on_headers_complete",
                                    "on_body", "on_message_complete", "on_response_complete", "send_400_response"])
def test_uvicorn_protocol_methods_the_inline_protocol_overrides_or_calls(method):
    assert callable(getattr(HttpToolsProtocol, method, None)), moved(HttpToolsProtocol, method, PROTOCOL)


def test_uvicorn_protocol_state_the_inline_protocol_reads():
    params = inspect.signature(HttpToolsProtocol.__init__).parameters
    for name in ("config", "server_state", "app_state"):
        assert name in params, moved(HttpToolsProtocol, f"__init__({name}=)", LIFECYCLE)
    loop = asyncio.new_event_loop()
    try:
        proto = _protocol(loop)
        proto.connection_made(_Transport())
        for name in ("loop", "transport", "parser", "flow", "cycle", "pipeline", "tasks", "server_state"):
            assert hasattr(proto, name), moved(HttpToolsProtocol, name, PROTOCOL)
        assert isinstance(proto.flow.write_paused, bool), moved(proto.flow, "write_paused", PROTOCOL)
        assert isinstance(proto.server_state.default_headers, list), moved(proto.server_state, "default_headers",
                                                                            PROTOCOL)
        assert isinstance(proto.tasks, set), moved(HttpToolsProtocol, "tasks (a set)", PROTOCOL)
        # the request line and two header lines, the headers not complete yet (no ASGI cycle)
        proto.data_received(b"GET /ext_authz/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t\r\nx-more")
        assert proto.url == b"/ext_authz/x", moved(HttpToolsProtocol, "url (raw bytes)", PROTOCOL)
        assert (b"authorization", b"Bearer t") in proto.headers, moved(HttpToolsProtocol, "headers", PROTOCOL)
        for name in ("get_http_version", "should_keep_alive", "should_upgrade", "get_method"):
            assert callable(getattr(proto.parser, name, None)), moved(proto.parser, name, PROTOCOL)
        proto.connection_lost(None)
    finally:
        loop.close()


def test_uvicorn_request_cycle_attributes_the_stand_in_cycle_mirrors():
    source = inspect.getsource(RequestResponseCycle.__init__)
    for name in ("response_complete", "disconnected", "keep_alive", "message_event"):
        assert f"self.{name} = " in source, moved(RequestResponseCycle, name, PROTOCOL)


def test_uvicorn_server_members_the_lifecycle_uses():
    assert callable(getattr(uvicorn.Server, "capture_signals", None)), moved(uvicorn.Server, "capture_signals",
                                                                              LIFECYCLE)
    assert "sockets" in inspect.signature(uvicorn.Server.serve).parameters, moved(uvicorn.Server, "serve(sockets=)",
                                                                                  LIFECYCLE)
    server = uvicorn.Server(uvicorn.Config(_app, lifespan="off"))
    for name in ("server_state", "config", "started", "should_exit"):
        assert hasattr(server, name), moved(uvicorn.Server, name, LIFECYCLE)
    # the lifecycle reads server.lifespan.state, set when the server starts
    assert "self.lifespan = " in Path(uvicorn.server.__file__).read_text(), moved(uvicorn.Server, "lifespan",
                                                                                 LIFECYCLE)
    config = uvicorn.Config(_app, lifespan="off")
    config.load()
    assert isinstance(config.lifespan_class(config).state, dict), moved(config.lifespan_class, "state", LIFECYCLE)


# -- redis-py -----------------------------------------------------------------------------------

@pytest.mark.parametrize("owner, member, reader", [
    (ClusterNode, "acquire_connection", CLUSTER_TRIP),
    (ClusterNode, "release", CLUSTER_TRIP),
    (RedisCluster, "get_node_from_key", CLUSTER_TRIP),
    (RedisCluster, "get_primaries", REDIS_STORE),
    (RedisCluster, "initialize", REDIS_STORE),
    (Connection, "send_packed_command", CLUSTER_TRIP),
    (Connection, "pack_commands", CLUSTER_TRIP),
    (Connection, "read_response", CLUSTER_TRIP),
    (Connection, "disconnect", CLUSTER_TRIP),
    (ConnectionPool, "get_connection", REDIS_STORE),
    (ConnectionPool, "release", REDIS_STORE),
    (Sentinel, "master_for", REDIS_STORE),
    (Redis, "register_script", REDIS_STORE),
])
def test_redis_members_the_store_drives(owner, member, reader):
    assert callable(getattr(owner, member, None)), moved(owner, member, reader)


def test_redis_pool_hands_out_a_connection_without_a_command_name():
    # the store's lean round trip calls pool.get_connection() with no arguments
    inspect.signature(ConnectionPool.get_connection).bind(ConnectionPool())
    assert isinstance(RedisCluster.PRIMARIES, str), moved(RedisCluster, "PRIMARIES", REDIS_STORE)


async def test_redis_lean_round_trip_on_a_real_server(redis_server):
    """The store's round trip, spelled as it does it, against redis-server: raw replies back."""
    client = Redis.from_url(redis_server.url)
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(conn.pack_commands([("SET", "canary", "1"), ("GET", "canary")]))
        assert [await conn.read_response(), await conn.read_response()] == [b"OK", b"1"], \
            moved(Connection, "read_response (raw replies)", REDIS_STORE)
    finally:
        await pool.release(conn)
        await client.aclose()


# -- hpack --------------------------------------------------------------------------------------

def test_hpack_decoder_table_the_header_block_cache_watches():
    table = Decoder().header_table
    for name in ("dynamic_entries", "maxsize"):
        assert hasattr(table, name), moved(table, name, HEADERS)
    assert Decoder().decode(b"\x82", raw=True) == [(b":method", b"GET")], moved(Decoder, "decode(raw=True)", HEADERS)
