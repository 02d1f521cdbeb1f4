"""--workers N: N single-loop processes. The HTTP port is shared through SO_REUSEPORT; the
h2 gRPC port is accepted here and balanced over the workers (sidecar/balancer.py)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Any

from authz.keys import KeyRing, private_pem
from config.settings import Settings
from sidecar.balancer import Balancer


def run_workers(settings: Settings, count: int, target: Any) -> int:
    """Start `count` workers running target(settings, keyring_pem, handoff); forward SIGTERM; 0 if
    all exit 0. handoff is the worker's end of the gRPC balancer (None with `grpc_server: grpcio`)."""
    keyring_pem = None
    if not settings.keys_dir:
        # one ephemeral key for all workers, or a token minted by one would fail on another
        keyring_pem = private_pem(KeyRing.ephemeral_key(settings.signing_alg).current.private_key)
    ctx = multiprocessing.get_context("spawn")
    balancer = None
    if settings.grpc_server == "h2":
        from sidecar import logs
        from sidecar.server import bind_listener

        logs.setup(settings.log_level)
        try:  # bound before any worker starts: a taken port fails at once, and clearly
            listener = bind_listener(settings.grpc_listen, reuse_port=False)
        except OSError as exc:
            print(f"auth-sidecar: cannot listen on grpc_listen {settings.grpc_listen}: {exc.strerror}",
                  file=sys.stderr)
            return 2
        balancer = Balancer(listener, count, ctx)
    procs = [ctx.Process(target=target, args=(settings, keyring_pem, balancer.handoff(i) if balancer else None),
                         name=f"worker-{i}") for i in range(count)]
    stopping: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        if balancer is not None:
            balancer.refuse()
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
    if balancer is not None:
        balancer.started()

    def reload(signum: int, _frame: Any) -> None:
        for proc in started:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGHUP, reload)
    for proc in started:
        proc.join()
    if balancer is not None:
        balancer.stop()
    # a worker still starting has no handler yet: the forwarded signal itself ends it, with
    # nothing in flight, and that is the stop that was asked for
    clean = {0} | {-signum for signum in stopping}
    return 0 if all(proc.exitcode in clean for proc in started) else 1

