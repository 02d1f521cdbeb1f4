"""Ports are bound once, without SO_REUSEPORT: a second `auth-sidecar serve` on the same ports
fails at once (it used to start silently and take half of the connections, with its own
keys), and a port in use is one line naming it, exit status 2, for both ports, with one
worker and with several. The workers of one supervisor share its HTTP port as they share
the gRPC one: each connection goes to the worker with the fewest."""

from __future__ import annotations

import socket

import httpx
import pytest

from authz.keys import write_new_key
from tests.sidecar.test_balancer import per_worker, workers
from tests.support.net import free_port, wait_until
from tests.support.processes import Sidecar


@pytest.fixture(scope="module", params=[1, 2], ids=["workers1", "workers2"])
def first(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"first-{request.param}")
    write_new_key(tmp / "keys")
    env = {"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys")}
    if request.param > 1:  # several workers need a shared store (memory:// is refused)
        env["AUTH_SIDECAR_STORE_URL"] = request.getfixturevalue("redis_server").url
    s = Sidecar(env=env, args=["--workers", str(request.param)], tmp=tmp).start()
    s.store_url = env.get("AUTH_SIDECAR_STORE_URL", "memory://")
    s.workers = request.param
    s.kid = httpx.get(s.http + "/.well-known/jwks.json").json()["keys"][0]["kid"]
    yield s
    assert s.stop() == 0


def refused(tmp, cases: list[tuple[int, int, int, str]], store_url: str) -> None:
    """Sidecars on these ports (workers, gRPC port, HTTP port, the setting that is taken), all
    started at once: each exits 2 with one line naming the setting and the address."""
    started = []
    for n, (count, grpc_port, http_port, name) in enumerate(cases):
        s = Sidecar(args=["--workers", str(count)], tmp=tmp)
        s.env.update({"AUTH_SIDECAR_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
                      "AUTH_SIDECAR_HTTP_LISTEN": f"127.0.0.1:{http_port}", "AUTH_SIDECAR_STORE_URL": store_url})
        s.log_path = tmp / f"refused-{n}.log"
        started.append((s.start(wait_ready=False), grpc_port if name == "grpc_listen" else http_port, name))
    for s, port, name in started:
        assert s.proc.wait(30) == 2
        lines = [line for line in s.logs().splitlines() if line.strip()]
        assert lines == [f"auth-sidecar: cannot listen on {name} 127.0.0.1:{port}: Address already in use"], lines


def test_a_second_serve_on_the_same_ports_fails_and_the_first_keeps_them(first, tmp_path):
    refused(tmp_path, [(first.workers, first.grpc_port, first.http_port, "grpc_listen"),
                       (first.workers, free_port(), first.http_port, "http_listen")], first.store_url)
    for _ in range(10):  # every new connection is still the first one's (its key, its store)
        with httpx.Client() as c:
            assert c.get(first.http + "/.well-known/jwks.json").json()["keys"][0]["kid"] == first.kid


def test_a_port_held_by_another_program_is_one_line_and_exit_2(tmp_path, redis_server):
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        refused(tmp_path, [(w, port, free_port(), "grpc_listen") for w in (1, 2)]
                + [(w, free_port(), port, "http_listen") for w in (1, 2)], redis_server.url)


def test_no_listening_socket_has_so_reuseport(first):
    for port in (first.grpc_port, first.http_port):
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with probe, pytest.raises(OSError):
            probe.bind(("127.0.0.1", port))


def test_http_connections_are_spread_over_the_workers(first):
    pids = workers(first.proc.pid) if first.workers > 1 else [first.proc.pid]
    clients = [httpx.Client() for _ in range(4)]  # long-lived, as Envoy's are
    try:
        for c in clients:
            assert c.get(first.http + "/healthz").status_code == 200
        even = [4 // first.workers] * first.workers
        wait_until(lambda: per_worker(pids, first.http_port) == even, 10, f"HTTP connections per worker: {even}")
    finally:
        for c in clients:
            c.close()
