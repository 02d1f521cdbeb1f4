"""Ports and waiting, without sleep-and-hope: poll a condition until a deadline."""

from __future__ import annotations

import socket
import time
from typing import Callable

_given: set[int] = set()


def free_port() -> int:
    """A free port, never one this process was given before: the kernel may hand the same
    one out twice in a row, and two listeners on one port fail Envoy's whole config."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


def wait_until(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    """Polls `condition` every 50 ms until it is true (an exception counts as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
