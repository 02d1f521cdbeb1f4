"""Per-stream state the connection keeps beside its request bodies: the client's send
windows (§6.9) and the streams the server reset lately."""

from __future__ import annotations

from collections import OrderedDict

from transport.h2.frames import DEFAULT_WINDOW, FLOW_CONTROL_ERROR, MAX_WINDOW, H2Error


class SendWindows(dict):
    """The client's flow-control window of every stream not yet answered in full, as
    stream id → window less `offset` (a dict: the hot path's lookups stay in C).

    A SETTINGS_INITIAL_WINDOW_SIZE change moves every such window by the difference
    (§6.9.2). Windows are stored less a common offset, so the change moves the offset only:
    the same cost with 1 or 1,000 streams open (a client toggling the setting once held the
    loop for seconds walking every stream). Overflow past 2^31-1 (§6.9.2: FLOW_CONTROL_ERROR)
    is checked against an upper bound of the stored values, walked to the exact maximum only
    when the bound says it may happen; SETTINGS frames have a budget, so that walk does too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0
        self.initial = DEFAULT_WINDOW
        self.fresh = DEFAULT_WINDOW  # the stored value of a stream opened now
        self._high = DEFAULT_WINDOW  # no stored value is above this

    def open(self, stream_id: int) -> None:
        self[stream_id] = self.fresh

    def window(self, stream_id: int) -> int | None:
        stored = self.get(stream_id)
        return None if stored is None else stored + self.offset

    def set_window(self, stream_id: int, window: int) -> None:
        """After sending: windows only shrink here."""
        self[stream_id] = window - self.offset

    def grow(self, stream_id: int, increment: int) -> bool:
        """A WINDOW_UPDATE; False if it would pass 2^31-1 (the stream's FLOW_CONTROL_ERROR)."""
        stored = self[stream_id] + increment
        if stored + self.offset > MAX_WINDOW:
            return False
        self[stream_id] = stored
        if stored > self._high:
            self._high = stored
        return True

    def set_initial(self, value: int) -> None:
        delta = value - self.initial
        if delta > 0 and self._high + self.offset + delta > MAX_WINDOW:
            self._high = max(self.values(), default=self.fresh)
            if self and self._high + self.offset + delta > MAX_WINDOW:
                raise H2Error(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream's window")
        self.offset += delta
        self.initial = value
        self.fresh = value - self.offset
        self._high = max(self._high, self.fresh)


class RecentlyReset:
    """Streams the server reset lately: frames the client sent before it saw the reset are
    ignored (§5.1), not taken for a stream id going backwards. Bounded: old ones fall out."""

    __slots__ = ("_ids", "_size")

    def __init__(self, size: int = 128) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def add(self, stream_id: int) -> None:
        self._ids[stream_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, stream_id: int) -> bool:
        return stream_id in self._ids
