"""Connection-level and stream-control frames (SETTINGS, WINDOW_UPDATE, RST_STREAM,
PRIORITY, GOAWAY): the part of `Connection` that keeps the client's settings and holds it to
its budgets."""

from __future__ import annotations

from transport.h2 import frames as f
from transport.h2.limits import Budget

class Control:
    """Mixed into `Connection`, whose state it reads and writes."""

    def _spend(self, budget: Budget, what: str) -> None:
        if not budget.spend():
            self.server.warn(f"HTTP/2 client over its budget of {what}; closing its connection")
            raise f.H2Error(f.ENHANCE_YOUR_CALM, f"too many {what}")

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise f.H2Error(f.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & f.ACK:
            if payload:
                raise f.H2Error(f.FRAME_SIZE_ERROR, "SETTINGS ack with a payload")
            return
        self._spend(self.settings_budget, "SETTINGS")
        entries = f.parse_settings(payload)
        if len(entries) > self.limits.max_settings_entries:
            raise f.H2Error(f.ENHANCE_YOUR_CALM, "too many settings in one frame")
        self.handshaken = True
        for key, value in entries:
            if key == f.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise f.H2Error(f.FLOW_CONTROL_ERROR, "initial window too large")
                self.windows.set_initial(value)
            elif key == f.SETTINGS_MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME <= value <= 2**24 - 1:
                    raise f.H2Error(f.PROTOCOL_ERROR, "bad max frame size")
                self.max_frame = value
            elif key == f.SETTINGS_ENABLE_PUSH:
                if value > 1:
                    raise f.H2Error(f.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH other than 0 or 1")
            elif key == f.SETTINGS_HEADER_TABLE_SIZE:
                # RFC 7541 §4.2: our encoder must say it keeps within the smaller table. It
                # never uses the table: one update to 0 suits any later size.
                if value < 4096 and self.table_update is not None:
                    self.table_update = True
        self.out.append(f.SETTINGS_ACK)
        self._resume(every=True)

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise f.H2Error(f.FRAME_SIZE_ERROR, "WINDOW_UPDATE of other than 4 bytes")
        increment = f.u32(payload)
        self.window_updates_seen += 1
        if self.window_updates_seen > self.data_frames * self.limits.window_updates_per_data:
            self._spend(self.window_updates, "WINDOW_UPDATE frames")
        if stream_id == 0:
            if increment == 0:
                raise f.H2Error(f.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > f.MAX_WINDOW:
                raise f.H2Error(f.FLOW_CONTROL_ERROR, "connection window overflow")
            self._resume()
        elif stream_id in self.windows:
            if increment == 0:
                self._reset(stream_id, f.PROTOCOL_ERROR)
            elif not self.windows.grow(stream_id, increment):
                self._reset(stream_id, f.FLOW_CONTROL_ERROR)
            elif stream_id in self.unsent:
                self._send_rest(stream_id)
        elif self._idle(stream_id):
            raise f.H2Error(f.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
        # else a closed stream: it may have been sent before the client saw the end (§6.9)

    def _rst_stream(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise f.H2Error(f.FRAME_SIZE_ERROR, "RST_STREAM of other than 4 bytes")
        if stream_id == 0:
            raise f.H2Error(f.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if self._idle(stream_id):
            raise f.H2Error(f.PROTOCOL_ERROR, "RST_STREAM on an idle stream")
        self._spend(self.resets, "stream resets")
        self._drop(stream_id)
        self._maybe_close()

    def _priority(self, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.H2Error(f.PROTOCOL_ERROR, "PRIORITY on stream 0")
        self._spend(self.idle_frames, "frames without a request")
        if len(payload) != 5:
            self._reset(stream_id, f.FRAME_SIZE_ERROR)
        elif f.u32(payload) == stream_id:
            self._reset(stream_id, f.PROTOCOL_ERROR)  # §5.3.1: a stream cannot depend on itself

    def _goaway(self, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise f.H2Error(f.PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            raise f.H2Error(f.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
        if f.error_code(payload, 4) != f.NO_ERROR:
            self.close()  # the client gave up on the connection
            return
        # the client opens no new stream: finish those it opened, then close
        self.drain()

    def _idle(self, stream_id: int) -> bool:
        """Never opened by the client (§5.1): even ids are ours, and we open none."""
        return stream_id > self.highest or not stream_id & 1
