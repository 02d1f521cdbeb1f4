"""uvicorn internals: checked against uvicorn 0.54.0 (guarded by tests/test_canaries.py).
uvicorn's httptools protocol, with HTTP-mode ext_authz checks answered inline.

For every request uvicorn builds an ASGI scope, a request-response cycle, an Event and a
task (~80 µs per request, measured: 7,800 vs 20,400 cached checks/s straight at one
worker); a check needs none of them. A cached (or missing) token is answered from the
parser's callbacks with the decision's pre-encoded bytes; a cache miss gets one task that
awaits its verification and writes the answer, while a stand-in cycle makes uvicorn queue
requests pipelined behind it and lets a graceful shutdown wait for it. Everything else
takes uvicorn's ordinary path: other paths, percent-encoded targets, HTTP/1.0 or
`Connection: close`, upgrades, a request pipelined behind one still being answered
(answers keep their order), and any request while the client is not reading its answers
(uvicorn's path waits for it and stops reading further requests).

uvicorn has no timeout for a request being received (only for an idle keep-alive
connection): a client that sends half a request, or nothing, would hold its connection
for good. Here a request must arrive whole (line, headers, body) within `read_timeout`
seconds of its first byte, and a new connection must start one within as long.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authz.now_or_later import Later
from transport.http.check import HttpCheckApp, raw_path

_VERIFYING: Any = object()  # `answer` of a request whose check runs in a task
_LATE = b"request not received in time"
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
              b"connection: close\r\n\r\n%s" % (len(_LATE), _LATE))


_MALFORMED = b'{"error": "invalid_request", "error_description": "malformed HTTP request"}'


class _Verifying:
    """Stands in for uvicorn's request cycle while a check verifies: the attributes uvicorn
    reads (queueing pipelined requests, shutdown, a lost connection)."""

    response_complete = False
    disconnected = False
    keep_alive = True

    def __init__(self) -> None:
        self.message_event = asyncio.Event()


def protocol_for(check: HttpCheckApp, read_timeout: float = 10.0,
                 on_closed: Callable[[], None] | None = None) -> type[HttpToolsProtocol]:
    """The protocol class; `on_closed` is told of every connection that ends (the balancer
    of --workers counts each worker's open connections)."""
    date_source: list = [None, b""]  # uvicorn's default-headers list → its header lines

    def date_lines(defaults: list[tuple[bytes, bytes]]) -> bytes:
        if defaults is not date_source[0]:  # uvicorn replaces the list once a second
            date_source[:] = [defaults, b"".join(b"%s: %s\r\n" % kv for kv in defaults)]
        return date_source[1]

    begin = HttpToolsProtocol.on_message_begin

    class ExtAuthzProtocol(HttpToolsProtocol):
        answer: Any = None  # an inline answer (bytes), written once the request ends, or _VERIFYING
        read_timer: Any = None  # at most one per connection, re-armed lazily (not one per request)
        awaiting_since: float | None = None  # loop time a request (or the first one) began to be awaited
        in_headers = False  # the request line or headers are still arriving

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.awaiting_since = self.loop.time()
            self.read_timer = self.loop.call_later(read_timeout, self._check_read)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.read_timer is not None:
                self.read_timer.cancel()
                self.read_timer = None
            super().connection_lost(exc)
            if on_closed is not None:
                on_closed()

        def _check_read(self) -> None:
            self.read_timer = None
            since = self.awaiting_since
            if since is None or self.transport.is_closing():
                return  # nothing awaited: on_message_begin arms again
            left = since + read_timeout - self.loop.time()
            if left > 0:
                self.read_timer = self.loop.call_later(left, self._check_read)
                return
            if self.in_headers:  # no answer has begun: say why before closing
                self.transport.write(_TIMED_OUT)
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            """What the parser refused (a control byte in a header, a bad request line): the
            RFC 6749 error body, as every other 400 of ours, instead of uvicorn's plain text."""
            head = b"HTTP/1.1 400 Bad Request\r\n%scontent-type: application/json\r\ncontent-length: %d\r\n" \
                   b"connection: close\r\n\r\n" % (date_lines(self.server_state.default_headers), len(_MALFORMED))
            self.transport.write(head + _MALFORMED)
            self.transport.close()

        def on_message_begin(self) -> None:  # per request: kept lean (no timer, no super())
            begin(self)
            self.in_headers = True
            self.awaiting_since = self.loop.time()
            if self.read_timer is None:
                self.read_timer = self.loop.call_later(read_timeout, self._check_read)

        def on_headers_complete(self) -> None:
            self.in_headers = False
            path = raw_path(self.url)
            parser = self.parser
            if (path is not None and not self.pipeline and (self.cycle is None or self.cycle.response_complete)
                    and not self.flow.write_paused  # a client not reading: the ASGI path waits for it
                    and parser.get_http_version() == "1.1" and parser.should_keep_alive()
                    and not parser.should_upgrade()):
                result = check.answer_now(parser.get_method(), path, self.headers,
                                          date_lines(self.server_state.default_headers))
                if type(result) is not Later:
                    self.answer = result
                else:
                    self.answer = _VERIFYING
                    self.cycle = cycle = _Verifying()  # type: ignore[assignment]
                    task = self.loop.create_task(self._answer_later(cycle, result))
                    task.add_done_callback(self.tasks.discard)
                    self.tasks.add(task)
                return
            super().on_headers_complete()

        async def _answer_later(self, cycle: _Verifying, pending: Later) -> None:
            decision, identity = await pending
            if cycle.disconnected or self.transport.is_closing():
                return
            self.transport.write(check.raw_answer(decision, identity, date_lines(self.server_state.default_headers)))
            cycle.response_complete = True
            if not cycle.keep_alive:  # the server is shutting down
                self.transport.close()
                return
            self.on_response_complete()  # keep-alive timer, counters, requests queued behind it

        def on_body(self, body: bytes) -> None:
            if self.answer is None:
                super().on_body(body)  # an inline answer does not read a body

        def on_message_complete(self) -> None:
            self.awaiting_since = None
            answer = self.answer
            if answer is None:
                super().on_message_complete()
                return
            self.answer = None
            if answer is not _VERIFYING:
                self.transport.write(answer)
                self.on_response_complete()

    return ExtAuthzProtocol
