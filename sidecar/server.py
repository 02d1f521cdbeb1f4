"""Server lifecycle, as uvicorn does it: start → serve → on SIGTERM mark not serving, stop
accepting, drain in-flight work, close clients (docs/architecture.md, rule 7). What runs is
built by sidecar/container.py."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Callable

from authz.keys import KeyRing
from config.settings import Settings
from sidecar import container as composition
from sidecar.key_watch import KeyWatcher
from sidecar.reload import Reloader, SettingsSource
from transport.balancer import Handoff
from transport.sockets import Acceptor, ConnectionSource, bind_or_exit

log = logging.getLogger("sidecar.server")


async def serve(settings: Settings, keyring: KeyRing | None = None, handoff: ConnectionSource | None = None,
                http_handoff: ConnectionSource | None = None, source: SettingsSource | None = None) -> None:
    """`handoff`, `http_handoff`: where the gRPC and HTTP connections come from (the supervisor's
    balancer, or this process's own listening socket); None: bind the port here."""
    container = composition.build(settings, keyring)
    await container.start()
    faces = composition.faces(container, handoff, http_handoff)
    await faces.grpc.start()

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
    await faces.http.start()
    # everything built so far lives as long as the process: out of the collector's sight, a
    # full collection no longer walks it (~30 ms with the event loop stopped)
    gc.collect()
    gc.freeze()
    log.info("serving", extra={"grpc": settings.grpc_listen, "http": settings.http_listen,
                               "ephemeral_key": container.keyring.ephemeral,
                               "admin_api": settings.admin_token is not None})
    if settings.admin_token is None:
        log.info("admin API off: /admin/ answers 404 (set admin_token, AUTH_SIDECAR_ADMIN_TOKEN, to turn it on)")
    await stop.wait()

    log.info("draining")
    container.draining = True
    await reloader.stop()
    if key_watcher is not None:
        await key_watcher.stop()
    # not serving first, then new calls are refused and in-flight ones finish within the grace
    await faces.grpc.stop(settings.drain_seconds)
    await faces.http.stop()
    await container.close()
    log.info("stopped")


def _on_hup(reloader: Reloader) -> Callable[[], None]:
    def hup() -> None:
        log.info("SIGHUP: reloading the config")
        reloader.request()
    return hup


def run(settings: Settings, keyring_pem: bytes | None = None, handoff: Handoff | None = None,
        http_handoff: Handoff | None = None, source: SettingsSource | None = None) -> None:
    """Entry point of one worker process. Without http_handoff it is the only one: it binds
    its ports first (a port in use: one line and exit status 2)."""
    from sidecar import logs

    logs.setup(settings.log_level)
    grpc_source: ConnectionSource | None = handoff
    http_source: ConnectionSource | None = http_handoff
    if http_source is None:
        if grpc_source is None and settings.grpc_server == "h2":
            grpc_source = Acceptor(bind_or_exit("grpc_listen", settings.grpc_listen))
        http_source = Acceptor(bind_or_exit("http_listen", settings.http_listen))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    keyring = KeyRing.from_pem(keyring_pem) if keyring_pem else None
    asyncio.run(serve(settings, keyring, grpc_source, http_source, source=source))
