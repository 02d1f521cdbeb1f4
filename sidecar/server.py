"""Server lifecycle, as uvicorn does it: start → serve → on SIGTERM mark not serving,
stop accepting, drain in-flight work, close clients (DESIGN rule 7)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import socket
from typing import Any, Callable

import uvicorn
from prometheus_client import CollectorRegistry

from authz.keys import KeyRing
from config.settings import Settings
from sidecar import container as composition
from transport.balancer import Handoff
from sidecar.http_app import build_app
from transport.http.protocol import protocol_for
from sidecar.key_watch import KeyWatcher
from transport.sockets import Acceptor, bind, bind_or_exit
from sidecar.reload import Reloader, SettingsSource
from transport.grpc.h2_face import H2Face

log = logging.getLogger("sidecar.server")


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield  # signals are ours: see serve()


Extender = Callable[[composition.Container, CollectorRegistry], list]


async def serve(settings: Settings, keyring: KeyRing | None = None, extend: Extender | None = None,
                on_ready: Callable[[], None] | None = None, handoff: Handoff | Acceptor | None = None,
                http_handoff: Handoff | Acceptor | None = None, source: SettingsSource | None = None) -> None:
    """`handoff`, `http_handoff`: where the gRPC and HTTP connections come from (the supervisor's
    balancer, or this process's own listening socket); None: bind the port here."""
    container = composition.build(settings, keyring)
    registry = CollectorRegistry()
    registry.register(container.metrics)
    from sidecar import service

    routes = (extend or service.routes)(container, registry)
    await container.start()

    grpc_face = await _start_grpc(settings, container, handoff)

    app = build_app(container, registry, routes)
    http_source = http_handoff or Acceptor(bind(settings.http_listen))
    protocol = protocol_for(container.http_check, settings.http_read_timeout_seconds, http_source.connection_closed)
    # proxy_headers off: uvicorn would take the client address from X-Forwarded-For of any peer on
    # 127.0.0.1; trusted_proxy_hops decides that (sidecar/source_address.py)
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, server_header=False,
                            timeout_graceful_shutdown=max(settings.drain_seconds, 1), loop="none", http=protocol,
                            proxy_headers=False)
    http_server = _Uvicorn(config)
    http_task = asyncio.create_task(http_server.serve(sockets=[]))  # no listener: connections are adopted

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(container, source, settings.reload_poll_seconds)
    loop.add_signal_handler(signal.SIGHUP, _on_hup(reloader))
    reloader.start()
    key_watcher = KeyWatcher(container.keyring, settings.keys.poll_seconds) if container.keyring.folder else None
    if key_watcher is not None:
        key_watcher.start()
    while not http_server.started and not http_task.done():
        await asyncio.sleep(0.01)
    http_source.receive(_adopter(http_server, protocol))
    # everything built so far lives as long as the process: out of the collector's sight, a
    # full collection no longer walks it (~30 ms with the event loop stopped)
    gc.collect()
    gc.freeze()
    log.info("serving", extra={"grpc": settings.grpc_listen, "http": settings.http_listen,
                               "ephemeral_key": container.keyring.ephemeral})
    if on_ready:
        on_ready()
    await stop.wait()

    log.info("draining")
    container.draining = True
    await reloader.stop()
    if key_watcher is not None:
        await key_watcher.stop()
    # not serving first, then new calls are refused and in-flight ones finish within the grace
    await grpc_face.stop(settings.drain_seconds)
    http_source.stop()
    http_server.should_exit = True
    await http_task
    await container.close()
    log.info("stopped")


def _on_hup(reloader: Reloader) -> Callable[[], None]:
    def hup() -> None:
        log.info("SIGHUP: reloading the config")
        reloader.request()
    return hup


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


async def _start_grpc(settings: Settings, container: composition.Container,
                      handoff: Handoff | Acceptor | None) -> Any:
    if settings.grpc_server == "grpcio":
        from transport.grpc.grpcio_face import GrpcioFace  # grpcio costs ~19 MB per worker: only when chosen

        face: Any = GrpcioFace(settings, container.authz_service)
    else:
        face = H2Face(settings, container.authz_service, handoff or Acceptor(bind(settings.grpc_listen)))
    await face.start()
    return face


def run(settings: Settings, keyring_pem: bytes | None = None, handoff: Handoff | None = None,
        extend: Any = None, http_handoff: Handoff | None = None, source: SettingsSource | None = None) -> None:
    """Entry point of one worker process. Without http_handoff it is the only one: it binds
    its ports first (a port in use: one line and exit status 2)."""
    from sidecar import logs

    logs.setup(settings.log_level)
    if http_handoff is None:
        if handoff is None and settings.grpc_server == "h2":
            handoff = Acceptor(bind_or_exit("grpc_listen", settings.grpc_listen))  # type: ignore[assignment]
        http_handoff = Acceptor(bind_or_exit("http_listen", settings.http_listen))  # type: ignore[assignment]
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    keyring = KeyRing.from_pem(keyring_pem) if keyring_pem else None
    asyncio.run(serve(settings, keyring, extend, handoff=handoff, http_handoff=http_handoff, source=source))
