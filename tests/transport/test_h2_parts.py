"""The HTTP/2 parts on their own: send windows, budgets, turns of bounded work."""

from __future__ import annotations

import asyncio
import time

import pytest

from transport.grpc.unary import GrpcH2Server
from transport.h2 import frames as w
from transport.h2.connection import Connection
from transport.h2.limits import Budget, Limits
from transport.h2.stream import SendWindows


def test_an_initial_window_change_moves_every_open_window_and_later_ones():
    windows = SendWindows()
    for sid in (1, 3, 5):
        windows.open(sid)
    windows.set_window(3, 1000)  # after sending part of an answer
    windows.set_initial(10)
    assert [windows.window(s) for s in (1, 3, 5)] == [10, 1000 - 65_535 + 10, 10]
    windows.open(7)
    windows.set_initial(100)
    assert [windows.window(s) for s in (1, 5, 7)] == [100, 100, 100]
    assert windows.grow(7, 50) and windows.window(7) == 150


def test_a_window_pushed_past_the_maximum_is_a_flow_control_error():
    windows = SendWindows()
    windows.open(1)
    assert not windows.grow(1, 2**31 - 1)  # the stream's own error
    assert windows.grow(1, 2**31 - 1 - 65_535 - 10) and windows.window(1) == 2**31 - 11
    with pytest.raises(w.H2Error) as err:
        windows.set_initial(65_535 + 11)  # §6.9.2
    assert err.value.code == w.FLOW_CONTROL_ERROR
    windows.pop(1)  # once that stream is gone, the same change is fine
    windows.set_initial(65_535 + 11)


def test_toggling_the_initial_window_costs_the_same_with_many_streams():
    def toggles(streams: int) -> float:
        windows = SendWindows()
        for sid in range(1, 2 * streams, 2):
            windows.open(sid)
        start = time.perf_counter()
        for i in range(2000):
            windows.set_initial(100_000 if i % 2 else 65_535)
        return time.perf_counter() - start
    assert toggles(5000) < 20 * toggles(1) + 0.01  # walking 5,000 streams each time would be ~1000×


def test_a_budget_refills_with_time():
    budget = Budget(3, per_second=1000)
    assert all(budget.spend() for _ in range(3))
    assert not budget.spend()
    time.sleep(0.01)  # ~10 tokens back, at most 3 kept
    assert all(budget.spend() for _ in range(3))


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.reading = True

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def test_a_large_read_is_handled_in_turns_with_reading_paused_between():
    transport = Recording()
    connection = Connection(GrpcH2Server({}, limits=Limits(turn_units=100, pings=(10_000, 1.0))))
    connection.connection_made(transport)
    pings = 1000
    connection.data_received(w.PREFACE + w.settings({}) + w.frame(w.PING, 0, 0, bytes(8)) * pings)
    acks = lambda: b"".join(transport.writes).count(w.frame(w.PING, w.ACK, 0, bytes(8)))  # noqa: E731
    assert acks() < 100 and not transport.reading  # one turn's worth, the rest waits
    for _ in range(50):
        await asyncio.sleep(0)
        if transport.reading:
            break
    assert acks() == pings and transport.reading


async def test_bytes_read_while_a_turn_waits_come_after_the_rest():
    transport = Recording()
    connection = Connection(GrpcH2Server({}, limits=Limits(turn_units=100, pings=(10_000, 1.0))))
    connection.connection_made(transport)
    connection.data_received(w.PREFACE + w.settings({}) + w.frame(w.PING, 0, 0, bytes(8)) * 500)
    last = w.frame(w.PING, 0, 0, b"the last")
    connection.data_received(last[:12])  # a read the pause did not stop, with half a frame
    connection.data_received(last[12:])
    for _ in range(50):
        await asyncio.sleep(0)
        if transport.reading:
            break
    written = b"".join(transport.writes)
    assert written.endswith(w.frame(w.PING, w.ACK, 0, b"the last"))
    assert written.count(w.frame(w.PING, w.ACK, 0, bytes(8))) == 500


async def test_a_connection_window_update_resumes_the_streams_it_held_back():
    transport = Recording()
    connection = Connection(GrpcH2Server({"/t.T/Big": lambda m: bytes(int(m))}))
    connection.connection_made(transport)
    block = b"".join(b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v for n, v in [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/t.T/Big"), (b"content-type", b"application/grpc")])
    request = lambda sid: (w.frame(w.HEADERS, w.END_HEADERS, sid, block)  # noqa: E731
                           + w.frame(w.DATA, w.END_STREAM, sid, b"\0\0\0\0\x0540000"))
    connection.data_received(w.PREFACE + w.settings({}) + request(1) + request(3))  # 80 KB > the 64 KB window
    assert connection.unsent and list(connection.conn_blocked) == [3]
    connection.data_received(w.window_update(0, 40_000))
    assert not connection.unsent and not connection.conn_blocked
