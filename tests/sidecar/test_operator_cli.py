"""What an operator sees: the admin CLI against a server without the admin API, a `--workers`
value out of range, and log lines a pipeline can parse (RFC 3339 time, no colour codes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from tests.support.processes import ROOT, Sidecar


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A sidecar on embedded defaults: no admin token, so no admin API."""
    s = Sidecar(tmp=tmp_path_factory.mktemp("plain")).start()
    yield s
    s.stop()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sidecar.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_the_admin_cli_says_the_admin_api_is_off_instead_of_a_traceback(plain):
    done = cli("admin", "--url", plain.http, "--token", "anything", "create-tenant", "acme", "Acme")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "HTTP 404" in done.stderr and "AUTH_SIDECAR_ADMIN_TOKEN" in done.stderr
    # and the server said so when it started
    assert any(line.startswith("admin API off") for line in (json.loads(raw)["msg"] for raw in plain.logs().splitlines()
                                                             if raw.strip()))


@pytest.mark.parametrize("count", ["0", "65"])
def test_workers_out_of_range_is_a_config_error(count):
    done = cli("serve", "--workers", count)
    assert done.returncode == 2
    assert done.stderr.startswith("auth-sidecar: config error:") and "workers" in done.stderr


def test_log_lines_are_json_with_rfc3339_times_and_no_colour_codes(plain):
    httpx.get(plain.http + "/ext_authz/x", headers={"authorization": "Bearer not-a-token"})  # a deny line
    lines = [json.loads(line) for line in plain.logs().splitlines() if line.strip()]
    assert any(line["msg"] == "deny" for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]), line
        assert "color_message" not in line, line
    assert "\x1b" not in plain.logs() and "\\u001b" not in plain.logs()
