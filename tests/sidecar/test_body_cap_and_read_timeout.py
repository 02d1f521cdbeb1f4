"""The HTTP port against clients that send too much or too little, over raw sockets: an admin
body over the cap is 413 before it is read (a 200 MB chunked push no longer grows the
process), and half-sent requests are closed after `http_read_timeout_seconds` (they were
held forever). Other clients keep being served throughout."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import wait_until
from tests.support.oauth import ADMIN_TOKEN

READ_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    s = admin_sidecar(tmp_path_factory.mktemp("bodies"), {"AUTH_SIDECAR_HTTP_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)})
    yield s
    assert "Traceback" not in s.logs()
    s.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect(svc) -> socket.socket:
    return socket.create_connection(("127.0.0.1", svc.http_port), timeout=10)


def head(path: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: x", f"authorization: Bearer {ADMIN_TOKEN}",
             "content-type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (status line, headers, a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def served(svc) -> bool:
    return httpx.get(svc.http + "/readyz", timeout=2).status_code == 200


def test_a_declared_length_over_the_cap_is_413_before_any_byte_of_it(svc):
    with connect(svc) as sock:
        started = time.monotonic()
        sock.sendall(head("/admin/tenants", f"content-length: {200 * 1024 * 1024}"))
        answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert time.monotonic() - started < 2
    assert served(svc)


def test_a_chunked_push_stops_at_the_cap_and_memory_holds(svc):
    before = rss_mb(svc.proc.pid)
    answers: list[bytes] = []
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))  # JSON whitespace, 1 MiB a chunk
    with connect(svc) as sock:
        sock.sendall(head("/admin/tenants", "transfer-encoding: chunked"))
        reader = threading.Thread(target=lambda: answers.append(read_answer(sock)), daemon=True)
        reader.start()
        sent = 0
        try:
            while sent < 200:
                sock.sendall(chunk)
                sent += 1
                if sent % 20 == 0:
                    assert served(svc)  # everyone else is answered during the push
        except OSError:
            pass  # the server may close once its read timeout is past: it read nothing more anyway
        reader.join(10)
    assert answers and answers[0].startswith(b"HTTP/1.1 413"), answers
    assert rss_mb(svc.proc.pid) - before < 40, (before, rss_mb(svc.proc.pid))
    assert served(svc)


def test_a_small_body_still_works_and_a_big_one_over_http_client_is_413(svc):
    admin = httpx.Client(base_url=svc.http, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert admin.post("/admin/tenants", json={"id": "t-body", "name": "x"}).status_code == 201
    r = admin.post("/admin/tenants", content=iter([b'{"id": "', b"x" * 100_000, b'"}']),
                   headers={"content-type": "application/json"})  # chunked: no Content-Length
    assert r.status_code == 413 and r.json()["error"] == "invalid_request"


def test_half_sent_requests_are_closed_and_others_served(svc):
    partial = [
        b"",  # connected, nothing sent
        b"GET /healthz HT",  # half a request line
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ",  # half the headers
        b"GET /ext_authz/x HTTP/1.1\r\nhost: x\r\n",  # headers never ended
        b"POST /oauth/token HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\ngrant_type",  # half a body
    ]
    socks = []
    for data in partial * 10:
        sock = connect(svc)
        sock.sendall(data)
        socks.append(sock)
    started = time.monotonic()
    assert served(svc)

    def all_closed() -> bool:
        assert served(svc)
        return all(_closed(sock) for sock in socks)
    wait_until(all_closed, READ_TIMEOUT + 5, "half-sent requests closed")
    assert time.monotonic() - started >= READ_TIMEOUT - 0.5  # not before their time
    for sock in socks:
        sock.close()


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
            assert data.startswith(b"HTTP/1.1 408") or data.startswith(b"request"), data
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_a_slow_but_timely_request_and_a_kept_alive_connection_are_served(svc):
    with connect(svc) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(READ_TIMEOUT / 3)  # deliberately slow client, well inside the timeout
        sock.sendall(b"host: x\r\n\r\n")
        assert read_answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(READ_TIMEOUT * 1.2)  # idle between requests: uvicorn's keep-alive rules, not ours
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        assert read_answer(sock).startswith(b"HTTP/1.1 200")
