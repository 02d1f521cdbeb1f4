"""docs/migrating.md, sections "Seed 003" and "Seed 004": their shell blocks run as written,
in one shell, against a real `auth-sidecar serve` on the memory store and on Redis."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jwt
import pytest

from tests.sidecar.test_docs_examples import json_objects
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN
from tests.support.processes import ROOT, Sidecar


def section(title_start: str) -> str:
    text = (ROOT / "docs" / "migrating.md").read_text()
    start = text.index("\n## " + title_start)
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def blocks(title_start: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section(title_start), re.S)


def run(sidecar: Sidecar, cwd: Path, title_start: str) -> list[str]:
    script = "set -euo pipefail\n" + "\necho '---8<---'\n".join(blocks(title_start))
    out = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin:" + str(Path(shutil.which("python3")).parent),
                              "AUTH": sidecar.http, "ADMIN": ADMIN_TOKEN})
    assert out.returncode == 0, out.stderr
    outputs = out.stdout.split("---8<---\n")
    assert len(outputs) == len(blocks(title_start))
    return outputs


@pytest.fixture(scope="module", params=["memory", "redis"])
def sidecar(request, tmp_path_factory):
    if not shutil.which("curl"):
        pytest.fail("curl is needed to run the documented examples")
    tmp = tmp_path_factory.mktemp(f"migrating-{request.param}")
    env = {"AUTH_SIDECAR_WAZO_API__ENABLED": "true", "AUTH_SIDECAR_WAZO_API__DEFAULT_CLIENT_ID": "example"}
    # on Redis, a database of its own: the doc's ids are fixed
    store = request.getfixturevalue("redis_server").url.replace("/0", "/5") if request.param == "redis" else None
    s = admin_sidecar(tmp, env, store_url=store)
    s.tmp = tmp
    yield s
    s.stop()


def test_seed_003_held_refresh_as_documented(sidecar):
    setup, login, trade, replay, logout = run(sidecar, sidecar.tmp, "Seed 003")
    assert "error" not in setup
    first, = json_objects(login)
    assert first["access_token"] and "refresh_token" not in first
    second, = json_objects(trade)
    assert second["access_token"] != first["access_token"] and "refresh_token" not in second
    refused, = json_objects(replay)
    assert refused["error"] == "invalid_grant" and "already traded" in refused["error_description"]
    assert logout.startswith("200\n")
    after, = json_objects(logout)
    assert after["error"] == "invalid_grant"


def test_seed_004_wazo_requests_as_documented(sidecar):
    setup, online, offline, refreshed, checks = run(sidecar, sidecar.tmp, "Seed 004")
    assert "error" not in setup
    data = json_objects(online)[0]["data"]
    assert "refresh_token" not in data and data["metadata"]["tenant_uuid"] == "wazo"
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    offline_data = json_objects(offline)[0]["data"]
    assert offline_data["refresh_token"].startswith("rt1-")
    same, foreign = json_objects(refreshed)
    assert same["data"]["refresh_token"] == offline_data["refresh_token"]  # rotation off, as in Wazo
    assert foreign["error"] in ("invalid_request", "invalid_grant")
    assert checks.split() == ["200", "401", "204", "200", "404"]
