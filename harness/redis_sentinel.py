"""A real Sentinel set on loopback: a master, a replica and three sentinels (Debian's
redis-sentinel, or redis-server --sentinel), with short failover timeouts so a test sees one in seconds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from harness.net import free_port, wait_until
from harness.processes import ProcessSet

SERVICE = "mymaster"


class RedisSentinelSet(ProcessSet):
    def __init__(self, folder: Path, binary: str | None = None) -> None:
        super().__init__()
        self.binary = binary or shutil.which("redis-server") or "redis-server"
        self.folder = folder
        self.data_ports = [free_port(), free_port()]  # master first, then the replica
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"


    def _start(self) -> "RedisSentinelSet":
        master, replica = self.data_ports
        for port in self.data_ports:
            self.start_data(port, replica_of=master if port == replica else None)
        wait_until(lambda: redis.Redis(port=replica).info("replication")["master_link_status"] == "up", 15,
                   "replica in sync")
        for port in self.sentinel_ports:
            conf = self.folder / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.folder}\n"
                            f"sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n"
                            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                            f"sentinel failover-timeout {SERVICE} 5000\n"
                            f"sentinel parallel-syncs {SERVICE} 1\n")
            sentinel = shutil.which("redis-sentinel")  # Debian's package; else the same binary in sentinel mode
            command = [sentinel, str(conf)] if sentinel else [self.binary, str(conf), "--sentinel"]
            self.procs[port] = subprocess.Popen(command,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in self.sentinel_ports:  # every sentinel knows the replica and the other sentinels
            def settled(port: int = port) -> bool:
                info = redis.Redis(port=port, socket_timeout=0.5).sentinel_master(SERVICE)
                return info["num-slaves"] >= 1 and info["num-other-sentinels"] >= 2
            wait_until(settled, 20, f"sentinel {port} sees the set")
        return self

    def start_data(self, port: int, replica_of: int | None = None) -> None:
        folder = self.folder / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
                "--appendonly", "yes", "--protected-mode", "no"]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis.Redis(port=port, socket_timeout=0.5).ping(), 15, f"redis {port} ping")

    def master_port(self) -> int:
        host, port = redis.Redis(port=self.sentinel_ports[0]).sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def kill(self, port: int) -> None:
        self.procs[port].kill()
        self.procs[port].wait(10)

