"""HTTP-mode ext_authz on the real server: checks answered inline by the protocol
(transport/http/protocol.py) and those taking uvicorn's ASGI path give the same answers, in
request order, on keep-alive and pipelined connections."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from authz.keys import write_new_key
from tests.support.processes import Sidecar


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-mode")
    write_new_key(tmp / "keys", "ES256")
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys")}, tmp=tmp).start()
    yield s
    assert s.stop() == 0


def request(target: str, token: str | None = None, extra: str = "", version: str = "1.1") -> bytes:
    auth = f"authorization: Bearer {token}\r\n" if token else ""
    return f"GET {target} HTTP/{version}\r\nhost: x\r\n{auth}{extra}\r\n".encode()


def read_answers(sock: socket.socket, n: int) -> list[tuple[int, dict[str, str], bytes]]:
    """n HTTP/1.1 answers off one connection: (status, headers without date, body)."""
    buf, answers = b"", []
    sock.settimeout(10)
    while len(answers) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(answers)} answers"
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        while len(buf) < length:
            buf += sock.recv(65536)
        body, buf = buf[:length], buf[length:]
        headers.pop("date")
        answers.append((int(lines[0].split()[1]), headers, body))
    return answers


def exchange(s: Sidecar, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    with socket.create_connection(("127.0.0.1", s.http_port)) as sock:
        sock.sendall(b"".join(requests))  # pipelined: all in one write
        return read_answers(sock, len(requests))


def misses(s: Sidecar) -> float:
    text = httpx.get(s.http + "/metrics").text
    return float(re.search(r'auth_sidecar_authz_cache_total\{result="miss"\} ([\d.]+)', text).group(1))


def test_inline_answers_match_the_asgi_path(sidecar):
    token = sidecar.mint("--sub", "u1", "--tenant", "t1")
    exchange(sidecar, request("/ext_authz/a", token))  # cached from here on
    # a percent-encoded target always takes the ASGI path, the same one inline
    (inline, asgi, inline_deny, asgi_deny) = exchange(
        sidecar, request("/ext_authz/a", token), request("/ext_authz/%61", token),
        request("/ext_authz/a"), request("/ext_authz/%61"))
    assert inline == asgi and inline[0] == 200
    assert inline[1]["x-user-id"] == "u1" and inline[1]["x-tenant-id"] == "t1"
    assert inline_deny == asgi_deny and inline_deny[0] == 401 and b"bearer token is required" in inline_deny[2]
    assert "bearer" in inline_deny[1]["www-authenticate"].lower()


def test_pipelined_answers_keep_request_order_across_a_cache_miss(sidecar):
    cached, fresh = sidecar.mint("--sub", "cached"), sidecar.mint("--sub", "fresh")
    exchange(sidecar, request("/ext_authz/", cached))
    before = misses(sidecar)
    # the fresh token needs verification (a task); the requests behind it must wait for it
    answers = exchange(sidecar, request("/ext_authz/", fresh), request("/ext_authz/", cached), request("/ext_authz/"),
                       request("/ext_authz?q=1", fresh))
    assert [(a[0], a[1].get("x-user-id")) for a in answers] == [(200, "fresh"), (200, "cached"), (401, None),
                                                                 (200, "fresh")]
    assert misses(sidecar) == before + 1  # one miss, though the protocol started it and the app finished it


def test_a_body_is_skipped_and_the_connection_goes_on(sidecar):
    token = sidecar.mint("--sub", "b1")
    answers = exchange(sidecar, request("/ext_authz/", token),
                       request("/ext_authz/", token, extra="content-length: 5\r\n") + b"hello",
                       request("/ext_authz/", token))
    assert [(a[0], a[1]["x-user-id"]) for a in answers] == [(200, "b1")] * 3


@pytest.mark.parametrize("extra, version", [("connection: close\r\n", "1.1"), ("", "1.0")])
def test_connection_close_and_http10_are_answered_then_closed(sidecar, extra, version):
    token = sidecar.mint("--sub", "c1")
    with socket.create_connection(("127.0.0.1", sidecar.http_port)) as sock:
        sock.sendall(request("/ext_authz/", token, extra=extra, version=version))
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):  # until the server closes
            data += chunk
    assert data.startswith("HTTP/1.1 200 OK\r\n".encode()) and b"x-user-id: c1\r\n" in data


def test_other_paths_are_not_checks(sidecar):
    (answer,) = exchange(sidecar, request("/ext_authzed"))
    assert answer[0] == 404


def test_a_miss_then_more_requests_on_the_same_connection(sidecar):
    first, second = sidecar.mint("--sub", "m1"), sidecar.mint("--sub", "m2")
    with socket.create_connection(("127.0.0.1", sidecar.http_port)) as sock:
        for token in (first, first, second, None, second):  # miss, hit, miss, deny, hit
            sock.sendall(request("/ext_authz/", token))
            ((status, headers, _),) = read_answers(sock, 1)
            assert (status, headers.get("x-user-id")) == ((200, token and ("m1" if token == first else "m2"))
                                                         if token else (401, None))
