"""uvicorn internals: checked against uvicorn 0.54.0 (guarded by tests/test_canaries.py).
The HTTP port: uvicorn serving the ASGI app (token service, admin API, probes, /ext_authz/)
with the inline ext_authz protocol (transport/http/protocol.py), on connections adopted from
this process's listening socket or from its supervisor's balancer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from typing import Any, Callable

import uvicorn

from config.settings import Settings
from transport.http.check import HttpCheckApp
from transport.http.protocol import protocol_for
from transport.sockets import ConnectionSource

log = logging.getLogger("transport.http")


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield  # signals are the process's: see sidecar/server.py


class HttpFace:
    def __init__(self, settings: Settings, app: Any, check: HttpCheckApp, source: ConnectionSource) -> None:
        self.source = source
        self.protocol = protocol_for(check, settings.http_read_timeout_seconds, source.connection_closed)
        # proxy_headers off: uvicorn would take the client address from X-Forwarded-For of any peer on
        # 127.0.0.1; trusted_proxy_hops decides that (sidecar/source_address.py)
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, server_header=False,
                                timeout_graceful_shutdown=max(settings.drain_seconds, 1), loop="none",
                                http=self.protocol, proxy_headers=False)
        self.server = _Uvicorn(config)
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[]))  # no listener: connections are adopted
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.01)
        self.source.receive(_adopter(self.server, self.protocol))

    async def stop(self) -> None:
        self.source.stop()
        self.server.should_exit = True
        if self.task is not None:
            await self.task


def _adopter(http_server: uvicorn.Server, protocol: type) -> Callable[[socket.socket], None]:
    """Serves an accepted connection with uvicorn's protocol, as uvicorn's own listener would
    (its server_state and lifespan state: uvicorn internals, see tests/sidecar/test_ports.py)."""
    loop = asyncio.get_running_loop()
    factory = functools.partial(protocol, config=http_server.config, server_state=http_server.server_state,
                                app_state=http_server.lifespan.state)
    pending: set[asyncio.Task] = set()

    def done(task: asyncio.Task) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:  # e.g. reset before it was served
            log.debug("connection not served", extra={"error": type(task.exception()).__name__})

    def adopt(sock: socket.socket) -> None:
        task = loop.create_task(loop.connect_accepted_socket(factory, sock))
        pending.add(task)
        task.add_done_callback(done)
    return adopt
