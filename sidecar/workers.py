"""--workers N: N single-loop processes. Both ports are bound here, without SO_REUSEPORT, and
their connections accepted here and balanced over the workers (transport/balancer.py)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

from authz.keys import KeyRing, private_pem
from config.settings import Settings
from sidecar import logs
from transport.balancer import Balancer
from transport.sockets import bind_or_exit


def run_workers(settings: Settings, count: int, target: Any) -> int:
    """Start `count` workers running target(settings, keyring_pem, handoff, http_handoff=...);
    forward SIGTERM; 0 if all exit 0. handoff is the worker's end of the gRPC balancer (None with
    `grpc_server: grpcio`), http_handoff its end of the HTTP one."""
    keyring_pem = None
    if not settings.keys_dir:
        # one ephemeral key for all workers, or a token minted by one would fail on another
        keyring_pem = private_pem(KeyRing.ephemeral_key(settings.signing_alg).current.private_key)
    ctx = multiprocessing.get_context("spawn")
    logs.setup(settings.log_level)
    # bound before any worker starts: a taken port fails at once, and clearly (exit status 2)
    grpc_sock = bind_or_exit("grpc_listen", settings.grpc_listen) if settings.grpc_server == "h2" else None
    http_sock = bind_or_exit("http_listen", settings.http_listen)
    balancer = Balancer(grpc_sock, count, ctx) if grpc_sock is not None else None
    http_balancer = Balancer(http_sock, count, ctx)
    balancers = [b for b in (balancer, http_balancer) if b is not None]
    procs = [ctx.Process(target=target, args=(settings, keyring_pem, balancer.handoff(i) if balancer else None),
                         kwargs={"http_handoff": http_balancer.handoff(i)}, name=f"worker-{i}")
             for i in range(count)]
    stopping: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        for b in balancers:
            b.refuse()
        for proc in procs:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)  # before any worker exists: none can be missed
    signal.signal(signal.SIGINT, forward)
    # SIGHUP (reload) is ignored while workers start, and they inherit that until they serve
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    started = []
    for proc in procs:
        if stopping:  # asked to stop while starting: start no more
            break
        proc.start()
        started.append(proc)
    for b in balancers:
        b.started()

    def reload(signum: int, _frame: Any) -> None:
        for proc in started:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGHUP, reload)
    for proc in started:
        proc.join()
    for b in balancers:
        b.stop()
    # a worker still starting has no handler yet: the forwarded signal itself ends it, with
    # nothing in flight, and that is the stop that was asked for
    clean = {0} | {-signum for signum in stopping}
    return 0 if all(proc.exitcode in clean for proc in started) else 1

