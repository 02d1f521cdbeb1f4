"""What one connection, and all of them together, may make the server do.

No connection's input may hold the event loop: each read is handled in turns of bounded
work (`turn_units`), and frames that cost the server work but carry no request (resets,
SETTINGS, PING, empty and PRIORITY frames) draw on per-connection budgets; a connection past
one is closed with GOAWAY(ENHANCE_YOUR_CALM), as nghttp2 and Envoy do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


class Budget:
    """A token bucket refilled lazily: the clock is read only once the tokens ran out, so a
    connection within its budget pays one decrement per frame."""

    __slots__ = ("left", "capacity", "rate", "stamp")

    def __init__(self, capacity: int, per_second: float) -> None:
        self.left = self.capacity = capacity
        self.rate = per_second
        self.stamp = time.monotonic()

    def spend(self) -> bool:
        self.left -= 1
        if self.left >= 0:
            return True
        now = time.monotonic()
        self.left = min(self.capacity, self.left + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.left >= 0


@dataclass(frozen=True)
class Limits:
    max_streams: int = 1024  # concurrent streams per connection; more are refused (REFUSED_STREAM)
    # SETTINGS_MAX_CONCURRENT_STREAMS as sent (None: max_streams). Lower than max_streams, it
    # asks a client for another connection past it without refusing the streams already in
    # flight when the SETTINGS arrive: Envoy spreads its Checks over connections, and the
    # supervisor hands each connection to the least-loaded worker
    advertised_streams: int | None = None
    max_message: int = 1 << 20
    # one turn of a connection's input: a frame costs 1 unit plus 1 per 2 KiB of payload
    turn_units: int = 128
    # (burst, refill per second) of each budget
    resets: tuple[int, float] = (1000, 100.0)  # RST_STREAM received or sent: Rapid Reset
    settings: tuple[int, float] = (100, 10.0)
    pings: tuple[int, float] = (1000, 200.0)
    # WINDOW_UPDATE frames beyond `window_updates_per_data` per DATA frame sent (Envoy's
    # max_inbound_window_update_frames_per_data_frame_sent): a client acknowledging what it
    # read never touches the budget (grpcio sends two per answer), a flood does
    window_updates: tuple[int, float] = (10_000, 1000.0)
    window_updates_per_data: int = 10
    idle_frames: tuple[int, float] = (200, 20.0)  # empty DATA/HEADERS/CONTINUATION, PRIORITY, unknown types
    max_settings_entries: int = 32  # per SETTINGS frame
    max_continuations: int = 128  # CONTINUATION frames of one header block
    max_header_block: int = 64 * 1024
    handshake_timeout: float = 10.0  # preface and SETTINGS within this, or closed
    idle_timeout: float = 300.0  # no stream open and no frame for this long: GOAWAY, closed (0: never)
    max_buffered_total: int = 16 << 20  # unfinished request bytes held across all connections

    @property
    def max_buffered(self) -> int:
        """Unfinished request bytes one connection may hold (streams × max_message would be a GiB)."""
        return 8 * self.max_message
