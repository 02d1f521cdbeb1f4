"""A real Redis Cluster on loopback: 3 masters and 3 replicas of Debian's redis-server,
joined by `redis-cli --cluster create`. Start once per session: it takes a few seconds."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import redis

from harness.net import free_port, wait_until
from harness.processes import ProcessSet


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisCluster(ProcessSet):
    def __init__(self, folder: Path, binary: str | None = None, nodes: int = 6) -> None:
        super().__init__()
        self.binary = binary or shutil.which("redis-server") or "redis-server"
        self.cli = shutil.which("redis-cli") or "redis-cli"
        self.folder = folder
        self.ports = [_cluster_port() for _ in range(nodes)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def _start_node(self, port: int) -> None:
        node = self.folder / str(port)
        node.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node), "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--appendonly", "no",
             "--save", "", "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


    def _start(self) -> "RedisCluster":
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            wait_until(lambda: redis.Redis(port=port, socket_timeout=0.5).ping(), 15, f"redis {port} ping")
        subprocess.run([self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        wait_until(self._healthy, 30, "cluster_state:ok on every node")
        return self

    def _healthy(self) -> bool:
        for port in self.ports:
            info = redis.Redis(port=port, socket_timeout=0.5).cluster("info")
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) < len(self.ports):
                return False
        return True

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[0])

    def flush(self) -> None:
        self.client().flushall(target_nodes=redis.RedisCluster.PRIMARIES)

