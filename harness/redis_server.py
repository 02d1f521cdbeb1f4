"""A real redis-server on a free port, AOF on, in a folder the test owns."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from harness.net import free_port, wait_until


class RedisServer:
    def __init__(self, folder: Path, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or "redis-server"
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
                                      "--save", "", "--protected-mode", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis.Redis(port=self.port, socket_timeout=0.5).ping(), 15, "redis ping")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()
