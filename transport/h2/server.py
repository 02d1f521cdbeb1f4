"""The HTTP/2 listener: accepts (or adopts) connections, closes those that never finish
their handshake or sit idle, and drains them on shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Callable, Protocol

from transport.h2 import frames as f
from transport.h2.connection import Connection
from transport.h2.headers import Request
from transport.h2.limits import Limits

log = logging.getLogger("transport.h2")


class Application(Protocol):
    """What the connection hands whole requests to (the gRPC unary layer)."""

    def call(self, connection: Connection, stream_id: int, path: bytes, body: bytes | bytearray) -> None: ...

    def refuse(self, connection: Connection, stream_id: int, request: Request) -> None: ...

    def too_large(self, connection: Connection, stream_id: int) -> None: ...


class H2Server:
    def __init__(self, app: Application, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.connections: set[Connection] = set()
        self.inflight: set[asyncio.Task] = set()
        self.buffered = 0  # unfinished request bytes across all connections
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.adopting: set[asyncio.Task] = set()
        self.on_connection_closed: Callable[[], None] | None = None  # --workers: counts for the balancer
        self._warned: dict[str, tuple[float, int]] = {}  # message → (when logged, times since)

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        # SO_REUSEPORT: every --workers process listens on the same port
        self._server = await loop.create_server(lambda: Connection(self), host or None, port,
                                                reuse_port=True, backlog=2048)

    def adopt(self, sock: socket.socket) -> None:
        """Serve a connection accepted elsewhere (the supervisor of --workers hands them out)."""
        task = asyncio.get_running_loop().create_task(self._adopt(sock))
        self.adopting.add(task)
        task.add_done_callback(self.adopting.discard)

    async def _adopt(self, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: Connection(self), sock)
        except OSError as exc:  # the client left before we got it: it still counts as closed
            log.debug("handed connection not served", extra={"error": type(exc).__name__})
            sock.close()
            if self.on_connection_closed is not None:
                self.on_connection_closed()

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1] if self._server else 0

    def warn(self, message: str) -> None:
        """A warning about clients, at most one line per message every 10 s (an attacker that
        reconnects would otherwise write one per connection), with how many it stands for."""
        now = time.monotonic()
        last, count = self._warned.get(message, (0.0, 0))
        if now - last < 10:
            self._warned[message] = (last, count + 1)
            return
        self._warned[message] = (now, 0)
        log.warning(message, extra={"since_last": count})

    # connections

    def connection_made(self, connection: Connection) -> None:
        self.connections.add(connection)
        if self._sweeper is None:
            self._schedule_sweep()

    def connection_lost(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.on_connection_closed is not None:
            self.on_connection_closed()

    # Handshake and idle timeouts: one timer for all connections, not one per connection and
    # nothing per frame (a connection counts its reads; a sweep sees whether the count moved).

    def _tick(self) -> float:
        limits = self.limits
        times = [t for t in (limits.handshake_timeout, limits.idle_timeout) if t > 0]
        return min([1.0] + [t / 4 for t in times])

    def _schedule_sweep(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(self._tick(), self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        if not self.connections:
            return
        now = asyncio.get_running_loop().time()
        handshake, idle = self.limits.handshake_timeout, self.limits.idle_timeout
        for connection in list(self.connections):
            if not connection.handshaken:
                if handshake > 0 and now - connection.born > handshake:
                    log.debug("HTTP/2 handshake not finished in time; closing")
                    connection.close()
                continue
            if idle <= 0:
                continue
            seen = connection.quiet
            if seen is None or seen[0] != connection.reads or connection.windows or connection.active:
                connection.quiet = (connection.reads, now)
            elif now - seen[1] >= idle:
                connection.out.append(f.goaway(connection.highest, f.NO_ERROR))
                connection.close()
        self._schedule_sweep()

    async def stop(self, grace: float) -> None:
        """Stop accepting, tell every client to open no new stream (GOAWAY), let the calls in
        flight finish within `grace`, then close."""
        if self._server:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self.connections):
            connection.drain()
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=grace)
        for connection in list(self.connections):
            connection.close()
