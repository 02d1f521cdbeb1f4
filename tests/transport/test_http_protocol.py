"""The inline HTTP-mode protocol in-process under uvicorn: a client that pipelines requests
and does not read the answers is not answered into memory."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn

from transport.http.protocol import protocol_for
from tests.support.net import free_port

pytestmark = pytest.mark.asyncio
BODY = b"x" * 65536
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)


class FixedCheck:
    """Stands in for HttpCheckApp: every check is answered inline with 64 KB."""

    def answer_now(self, method: bytes, path: str, headers: list, date: bytes) -> bytes:
        return ANSWER

    async def __call__(self, scope, receive, send) -> None:  # the ASGI path
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(BODY)).encode())]})
        await send({"type": "http.response.body", "body": BODY})


async def test_a_client_that_does_not_read_stops_being_read():
    check, port = FixedCheck(), free_port()
    server = uvicorn.Server(uvicorn.Config(check, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           access_log=False, http=protocol_for(check)))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    n = 2000  # 128 MB of answers, if all of them were made
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ext_authz/ HTTP/1.1\r\nhost: x\r\n\r\n" * n)
    while not server.server_state.connections:
        await asyncio.sleep(0.01)
    (protocol,) = server.server_state.connections
    limit = 32 * 1024 * 1024

    async def settled() -> None:  # the server stopped reading, or its answers piled up
        while not protocol.flow.read_paused and protocol.transport.get_write_buffer_size() < limit:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(settled(), 20)
    assert protocol.flow.read_paused and protocol.transport.get_write_buffer_size() < limit
    answers, tail, marker = 0, b"", b"HTTP/1.1 200 OK\r\n"
    while answers < n:  # once the client reads, every answer comes
        chunk = await asyncio.wait_for(reader.read(1 << 20), 20)
        assert chunk, f"closed after {answers} answers"
        answers += (tail + chunk).count(marker)
        tail = chunk[-(len(marker) - 1):]
    assert answers == n
    writer.close()
    server.should_exit = True
    await serving
