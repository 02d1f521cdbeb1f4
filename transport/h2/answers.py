"""Answers: header blocks, DATA within the client's flow-control windows, trailers, and
the end of a connection. The part of `Connection` that writes."""

from __future__ import annotations

import asyncio
from typing import Coroutine

from transport.h2 import frames as f
from transport.h2.headers import RESPONSE_HEADERS, TABLE_SIZE_ZERO

_HEAD = f.FRAME_HEAD
_RESPONSE_HEADERS_LEN = len(RESPONSE_HEADERS)


class Answers:
    """Mixed into `Connection`, whose state it reads and writes."""

    # answers (called by the application)

    def wait(self, stream_id: int, pending: Coroutine) -> None:
        """The answer needs I/O: it is awaited in a task, and written as soon as it is ready."""
        self.active.add(stream_id)
        task = asyncio.get_running_loop().create_task(pending)
        self.server.inflight.add(task)
        task.add_done_callback(self.server.inflight.discard)

    def waited(self, stream_id: int) -> None:
        self.active.discard(stream_id)
        # leaves at once: the next awaited answer of this pass (a signature check, ~100 µs or
        # more) would hold it back, and the client would wait for the whole batch
        self._flush()
        self._maybe_close()

    def _head_block(self, frame_head: bytes, block: bytes) -> bytes:
        if self.table_update:  # once: later size changes need no update (RFC 7541 §4.2)
            self.table_update = None
            block = TABLE_SIZE_ZERO + block
            hi, lo, ftype, flags, stream_id = _HEAD.unpack(frame_head)
            frame_head = _HEAD.pack(0, len(block), ftype, flags, stream_id)
        return frame_head + block

    def answer(self, stream_id: int, data: bytes | None, trailers: bytes) -> None:
        """Headers, the stream's DATA (None: none) and trailers."""
        window = self.windows.get(stream_id)
        if self.transport is None or window is None:
            return  # the client reset the stream meanwhile
        window += self.windows.offset
        self.answered += 1
        headers = _HEAD.pack(0, _RESPONSE_HEADERS_LEN, f.HEADERS, f.END_HEADERS, stream_id)
        headers = self._head_block(headers, RESPONSE_HEADERS) if self.table_update else headers + RESPONSE_HEADERS
        tail = _HEAD.pack(0, len(trailers), f.HEADERS, f.END_HEADERS | f.END_STREAM, stream_id) + trailers
        if data is None:
            del self.windows[stream_id]
            self.out.append(headers + tail)
            return
        n = len(data)
        if n <= window and n <= self.send_window and n <= self.max_frame:  # the common case: one write
            del self.windows[stream_id]
            self.send_window -= n
            self.data_frames += 1
            self.out.append(headers + _HEAD.pack(n >> 16, n & 0xFFFF, f.DATA, 0, stream_id) + data + tail)
            return
        self.out.append(headers)
        self.unsent[stream_id] = (data, tail)
        self._send_rest(stream_id)

    def answer_only(self, stream_id: int, block: bytes) -> None:
        """One header block ending the stream (headers and trailers in one, "Trailers-Only")."""
        if self.transport is None or stream_id not in self.windows:
            return
        self.answered += 1
        del self.windows[stream_id]
        self.out.append(self._head_block(_HEAD.pack(0, len(block), f.HEADERS, f.END_HEADERS | f.END_STREAM,
                                                    stream_id), block))

    def _send_rest(self, stream_id: int) -> None:
        """Send what flow control allows now; the rest goes when the client opens its window."""
        data, tail = self.unsent[stream_id]
        window = self.windows.window(stream_id)
        sent = 0
        while sent < len(data):
            size = min(window, self.send_window, self.max_frame, len(data) - sent)
            if size <= 0:
                break
            self.out.append(f.frame(f.DATA, 0, stream_id, data[sent:sent + size]))
            self.data_frames += 1
            sent += size
            window -= size
            self.send_window -= size
        if sent < len(data):
            self.windows.set_window(stream_id, window)
            self.unsent[stream_id] = (data[sent:], tail)
            if window > 0:  # held back by the connection's window, not its own
                self.conn_blocked[stream_id] = None
            else:
                self.conn_blocked.pop(stream_id, None)
            return
        self.out.append(tail)
        del self.unsent[stream_id]
        del self.windows[stream_id]
        self.conn_blocked.pop(stream_id, None)

    def _resume(self, every: bool = False) -> None:
        """After the connection's window opened: the streams it held back (not those waiting
        for their own window: a WINDOW_UPDATE of 1 byte must not walk 1,000 stalled streams).
        After a SETTINGS change of every window: all of them (SETTINGS have a budget)."""
        for stream_id in list(self.unsent if every else self.conn_blocked):
            if self.send_window <= 0:
                break
            self._send_rest(stream_id)

    def _flush(self) -> None:
        if self.transport is not None and self.out:
            out = self.out
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    # the end

    def drain(self) -> None:
        """GOAWAY: streams up to the last one received finish, later ones are refused."""
        if self.transport is None or self.last_stream is not None:
            return
        self.last_stream = self.highest
        self.out.append(f.goaway(self.last_stream, f.NO_ERROR))
        self._flush()
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self.last_stream is not None and not self.windows and not self.active:
            self.close()

    def _fail(self, code: int) -> None:
        """A connection error: GOAWAY with its code, then close."""
        self.out.append(f.goaway(self.highest, code))
        self.close()

    def close(self) -> None:
        self._flush()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
