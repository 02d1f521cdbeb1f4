"""uvicorn's httptools protocol, with HTTP-mode ext_authz checks answered inline.

For every request uvicorn builds an ASGI scope, a request-response cycle, an Event and a
task; a Check whose token is cached (or missing) needs none of them, so it is answered
from the parser's callbacks with the decision's pre-encoded bytes. A cache miss starts its
verification here and hands it to `HttpCheckApp` through the scope, so the lookup is not
repeated. Everything else takes uvicorn's ordinary path: other paths, percent-encoded
targets, HTTP/1.0 or `Connection: close`, upgrades, a request pipelined behind one still
being answered (answers must keep their order), and any request while the client is not
reading its answers (uvicorn's path waits for it and stops reading further requests).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authz.http_check import PENDING_CHECK, HttpCheckApp, raw_path


def protocol_for(check: HttpCheckApp) -> type[HttpToolsProtocol]:
    date_source: list = [None, b""]  # uvicorn's default-headers list → its header lines

    def date_lines(defaults: list[tuple[bytes, bytes]]) -> bytes:
        if defaults is not date_source[0]:  # uvicorn replaces the list once a second
            date_source[:] = [defaults, b"".join(b"%s: %s\r\n" % kv for kv in defaults)]
        return date_source[1]

    class ExtAuthzProtocol(HttpToolsProtocol):
        answer: bytes | None = None  # a response made inline, written once the request ends

        def on_headers_complete(self) -> None:
            path = raw_path(self.url)
            parser = self.parser
            if (path is not None and not self.pipeline and (self.cycle is None or self.cycle.response_complete)
                    and not self.flow.write_paused  # a client not reading: the ASGI path waits for it
                    and parser.get_http_version() == "1.1" and parser.should_keep_alive()
                    and not parser.should_upgrade()):
                result = check.answer_now(parser.get_method(), path, self.headers,
                                          date_lines(self.server_state.default_headers))
                if type(result) is bytes:
                    self.answer = result
                    return
                self.scope.setdefault("extensions", {})[PENDING_CHECK] = result
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self.answer is None:
                super().on_body(body)  # an inline answer does not read a body

        def on_message_complete(self) -> None:
            answer = self.answer
            if answer is None:
                super().on_message_complete()
                return
            self.answer = None
            self.transport.write(answer)
            self.on_response_complete()  # keep-alive timer, counters, pipelined requests

    return ExtAuthzProtocol
