"""The listening sockets: bound once, by the process that supervises (the only process with
one worker), never with SO_REUSEPORT. A second `auth-sidecar serve` on the same ports then
fails at once instead of silently taking half of the connections; the workers of one
supervisor get their connections from it (transport/balancer.py)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from typing import Callable, Protocol

log = logging.getLogger("transport.sockets")
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def bind(listen: str) -> socket.socket:
    """A listening socket on HOST:PORT; OSError when the address is taken or not ours."""
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may rebind past TIME_WAIT
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def bind_or_exit(name: str, listen: str) -> socket.socket:
    """`bind`, or one line on stderr naming the setting and the address, and exit status 2."""
    try:
        return bind(listen)
    except OSError as exc:
        print(f"auth-sidecar: cannot listen on {name} {listen}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(2) from None


class ConnectionSource(Protocol):
    """Where a server's connections come from: its own listening socket (`Acceptor`) or the
    supervisor's balancer (transport/balancer.py: `Handoff`)."""

    def receive(self, adopt: Callable[[socket.socket], None]) -> None: ...

    def connection_closed(self) -> None: ...

    def stop(self) -> None: ...


class Acceptor:
    """One worker's own listening socket, accepted on its event loop: the same face as a
    balancer's Handoff (receive, connection_closed, stop), so a server does not care which."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._adopt: Callable[[socket.socket], None] | None = None

    def receive(self, adopt: Callable[[socket.socket], None]) -> None:
        self._adopt = adopt
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(64):  # then let the loop serve the connections it has
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:  # stop polling a while: it would spin
                    log.warning("cannot accept a connection", extra={"error": exc.strerror})
                    loop = asyncio.get_running_loop()
                    loop.remove_reader(self.sock.fileno())
                    loop.call_later(0.1, loop.add_reader, self.sock.fileno(), self._ready)
                return  # e.g. a client that reset before we accepted it
            self._adopt(conn)  # type: ignore[misc]

    def connection_closed(self) -> None:
        pass

    def stop(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        except (RuntimeError, ValueError):
            pass
        self.sock.close()
