"""--workers N on the gRPC and HTTP ports: the supervisor accepts and hands each connection to the
worker with the fewest open ones.

SO_REUSEPORT spreads connections by a hash of their addresses, which is fair only for many
connections. A gRPC client keeps a few for good: Envoy opens one HTTP/2 connection per
worker thread, so with two of each both landed on one worker half of the time and the other
core idled. Connections are passed over a Unix socket per worker (SCM_RIGHTS); the bytes of
the calls never go through the supervisor.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("transport.balancer")
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass
class Handoff:
    """A worker's end: where its connections arrive and where it counts the ones it closed."""

    index: int
    channel: socket.socket
    closed: Any  # multiprocessing Array: slot i written by worker i only (no lost updates)

    def receive(self, adopt: Callable[[socket.socket], None]) -> None:
        """Start adopting handed connections on the running loop; stop() undoes it."""
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._ready, adopt)

    def _ready(self, adopt: Callable[[socket.socket], None]) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.channel, 1, 1)
            except (BlockingIOError, InterruptedError):
                return
            if not data and not fds:  # the supervisor is gone
                self.stop()
                return
            for fd in fds:
                adopt(socket.socket(fileno=fd))

    def connection_closed(self) -> None:
        self.closed[self.index] += 1

    def stop(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        except (RuntimeError, ValueError):
            pass
        self.channel.close()  # connections still queued in it are closed by the kernel


class Balancer:
    """The supervisor's side: the listening socket, one channel per worker, an accept thread."""

    def __init__(self, sock: socket.socket, count: int, ctx: Any = None) -> None:
        ctx = ctx or multiprocessing.get_context("spawn")
        self.listener = sock
        # SEQPACKET: one message, one connection, whatever the worker reads at once
        self._pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(count)]
        self._handed = [0] * count  # only this process counts hand-offs
        self._closed = ctx.Array("q", count, lock=False)
        self._gone: set[int] = set()
        self._next = 0
        self._refusing = False
        self._thread: threading.Thread | None = None

    def handoff(self, index: int) -> Handoff:
        return Handoff(index, self._pairs[index][1], self._closed)

    def started(self) -> None:
        """Call once the workers exist: drop our copies of their ends (so a dead worker's
        channel fails instead of queueing) and start accepting."""
        for ours, theirs in self._pairs:
            theirs.close()
            ours.setblocking(False)
        self._thread = threading.Thread(target=self._accept_loop, name="balancer", daemon=True)
        self._thread.start()

    def refuse(self) -> None:
        """Accept no more connections (safe in a signal handler); the workers keep and drain
        the ones they have."""
        self._refusing = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass

    def stop(self) -> None:
        self.refuse()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.listener.close()
        for ours, _ in self._pairs:
            ours.close()

    def open_connections(self) -> list[int]:
        return [self._handed[i] - self._closed[i] for i in range(len(self._pairs))]

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError as exc:
                if self._refusing:
                    return  # refuse() shut the listener down
                if exc.errno in _OUT_OF_RESOURCES:  # keep serving; accept again once some are freed
                    log.warning("cannot accept a connection", extra={"error": exc.strerror})
                    time.sleep(0.1)
                continue  # e.g. a client that reset before we accepted it
            with conn:
                self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        """To the worker with the fewest open connections; ties go round in turn."""
        counts = self.open_connections()
        n = len(counts)
        order = sorted((i for i in range(n) if i not in self._gone), key=lambda i: (counts[i], (i - self._next) % n))
        for i in order:
            try:
                socket.send_fds(self._pairs[i][0], [b"c"], [conn.fileno()])
            except BlockingIOError:
                continue  # that worker is not reading its channel: try the next one
            except OSError:
                self._gone.add(i)  # that worker exited
                log.warning("worker gone: no more connections for it", extra={"worker": i})
                continue
            self._handed[i] += 1
            self._next = (i + 1) % n
            return
        log.warning("no worker took a connection: closed")
