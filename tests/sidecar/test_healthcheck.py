"""`auth-sidecar healthcheck` (the image's HEALTHCHECK) follows the configured HTTP address."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sidecar.healthcheck import probe_address, serve_config_from_cmdline
from tests.support.net import free_port
from tests.support.processes import ROOT, Sidecar


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real sidecar on a non-default port given only by its --config file, on the wildcard address."""
    tmp = tmp_path_factory.mktemp("healthcheck")
    sidecar = Sidecar(tmp=tmp)
    del sidecar.env["AUTH_SIDECAR_HTTP_LISTEN"]
    config = tmp / "config.yaml"
    config.write_text(f"http_listen: 0.0.0.0:{sidecar.http_port}\n")
    sidecar.args = ["--config", str(config)]
    sidecar.start()
    yield sidecar, config
    sidecar.stop()


def healthcheck(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_SIDECAR_")}
    return subprocess.run([sys.executable, "-m", "sidecar.cli", "healthcheck", *args], env={**clean, **env},
                          capture_output=True, text=True, cwd=ROOT, timeout=30)


def test_follows_the_config_file_given_as_argument_or_variable(served):
    sidecar, config = served
    for out in (healthcheck("--config", str(config)), healthcheck(AUTH_SIDECAR_CONFIG=str(config))):
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith("healthy:") and f"127.0.0.1:{sidecar.http_port}/readyz: 200" in out.stdout


def test_follows_the_listen_variable_and_probes_loopback_for_a_wildcard(served):
    sidecar, _ = served
    out = healthcheck("--path", "/healthz", AUTH_SIDECAR_HTTP_LISTEN=f"0.0.0.0:{sidecar.http_port}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"http://127.0.0.1:{sidecar.http_port}/healthz: 200" in out.stdout


def test_finds_the_config_of_a_running_serve_command_line(served):
    # In a container the engine starts the healthcheck beside PID 1 (`auth-sidecar serve --config F`).
    sidecar, config = served
    assert serve_config_from_cmdline(f"/proc/{sidecar.proc.pid}/cmdline") == str(config)
    assert serve_config_from_cmdline(f"/proc/{os.getpid()}/cmdline") is None  # pytest, not serve


def test_nothing_listening_is_unhealthy_with_exit_1():
    port = free_port()
    out = healthcheck(AUTH_SIDECAR_HTTP_LISTEN=f"127.0.0.1:{port}")
    assert out.returncode == 1
    assert out.stdout.startswith("unhealthy:") and f"127.0.0.1:{port}/readyz" in out.stdout


def test_a_bad_config_is_unhealthy_with_exit_1_not_2():
    out = healthcheck(AUTH_SIDECAR_HTTP_LISTEN="no-port")
    assert out.returncode == 1 and "http_listen" in out.stdout


@pytest.mark.parametrize("listen,expected", [("0.0.0.0:8080", ("127.0.0.1", 8080)), ("[::]:9000", ("::1", 9000)),
                                             ("10.1.2.3:80", ("10.1.2.3", 80)), ("[fd00::5]:81", ("fd00::5", 81))])
def test_probe_address(listen, expected):
    assert probe_address(listen) == expected
