"""Ports and waiting, without sleep-and-hope: poll a condition until a deadline."""

from __future__ import annotations

import time
from typing import Callable

from bench.stack import free_port  # one allocator: the bench's never repeats a port either

__all__ = ["free_port", "wait_until"]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
