"""--workers 2 on the gRPC port: each new connection goes to the worker with the fewest, so
two long-lived client connections (Envoy's two worker threads) use both workers, every time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc

from tests.support.net import wait_until
from tests.support.processes import Sidecar


def workers(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-f", "-P", str(parent), "spawn_main"], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def files_closed(pid: int) -> bool:
    try:
        return not os.listdir(f"/proc/{pid}/fd")  # a zombie's is empty
    except (FileNotFoundError, PermissionError):
        return True


def established(port: int) -> set[str]:
    """Socket inodes of the server side of established connections to `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    return inodes


def per_worker(pids: list[int], port: int) -> list[int]:
    """How many of the port's connections each worker holds."""
    inodes = established(port)
    counts = []
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        links = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
        counts.append(sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes))
    return counts


class Channel:
    """One gRPC connection of its own (grpcio shares one between channels unless told not to)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = pb_grpc.AuthorizationStub(self.channel)

    def check(self, token: str) -> int:
        req = pb.CheckRequest()
        req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
        return self.stub.Check(req, timeout=10).status.code

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def two_workers(tmp_path, keys_dir, redis_server):
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(keys_dir), "AUTH_SIDECAR_STORE_URL": redis_server.url},
                args=["--workers", "2"], tmp=tmp_path).start()
    wait_until(lambda: s.logs().count('"msg": "serving"') == 2, what="both workers serving")
    s.expected_exit = 0
    yield s
    assert s.stop() == s.expected_exit


def test_connections_go_to_the_worker_with_fewest(two_workers):
    s = two_workers
    pids = workers(s.proc.pid)
    assert len(pids) == 2
    token = s.mint("--sub", "u1", "--tenant", "t")
    chans: list[Channel] = []

    def open_one() -> int:
        """A new connection, served; the worker it landed on."""
        before = per_worker(pids, s.grpc_port)
        chans.append(Channel(s.grpc))
        assert chans[-1].check(token) == 0
        wait_until(lambda: sum(per_worker(pids, s.grpc_port)) == sum(before) + 1, what="the new connection")
        return next(i for i, (x, y) in enumerate(zip(before, per_worker(pids, s.grpc_port))) if y > x)

    try:
        # two connections, as an Envoy with two worker threads opens: one on each worker, every time
        a, b = open_one(), open_one()
        assert {a, b} == {0, 1}
        c = open_one()
        assert sorted(per_worker(pids, s.grpc_port)) == [1, 2]
        # the two on worker c close: the next one goes there, though it is the other's turn
        for ch, where in zip(chans[:], (a, b, c)):
            if where == c:
                ch.close()
                chans.remove(ch)
        wait_until(lambda: per_worker(pids, s.grpc_port)[c] == 0, what="worker c without connections")
        assert open_one() == c
        assert per_worker(pids, s.grpc_port) == [1, 1]
    finally:
        for ch in chans:
            ch.close()


def test_a_dead_worker_gets_no_more_connections(two_workers):
    s = two_workers
    pids = workers(s.proc.pid)
    token = s.mint("--sub", "u1", "--tenant", "t")
    os.kill(pids[0], signal.SIGKILL)
    # gone, its files closed: a dying process leaves pgrep's view (its memory is freed) before
    # the kernel closes its files, and a connection handed in between would die with it
    wait_until(lambda: workers(s.proc.pid) == [pids[1]] and files_closed(pids[0]), what="the worker gone")
    # every new connection is served by the one left, none is lost to the dead worker's channel
    for _ in range(6):
        c = Channel(s.grpc)
        try:
            assert c.check(token) == 0
        finally:
            c.close()
    s.expected_exit = 1  # a worker died: the supervisor's exit status says so


def test_a_taken_grpc_port_is_a_clear_error(tmp_path, keys_dir, redis_server):
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(keys_dir), "AUTH_SIDECAR_STORE_URL": redis_server.url},
                args=["--workers", "2"], tmp=tmp_path)
    with socket.create_server(("127.0.0.1", s.grpc_port)):
        s.start(wait_ready=False)
        assert s.proc.wait(30) == 2
    assert f"cannot listen on grpc_listen 127.0.0.1:{s.grpc_port}" in s.logs()
    assert "Traceback" not in s.logs()
