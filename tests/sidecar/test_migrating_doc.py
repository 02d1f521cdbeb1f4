"""docs/migrating.md's sections for seeds 000, 001 and 002, run as written (one shell, block by
block) against a real `auth-sidecar serve` on the memory store and on Redis; then every access
token the blocks obtained goes through the real Envoy in both ext_authz modes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from authz.keys import write_new_key
from tests.e2e.conftest import start_stack, stop_stack
from tests.sidecar.test_docs_examples import json_objects
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN
from tests.support.processes import ROOT

SECTIONS = ("## Seed 000", "## Seed 003")  # this test's part of the doc: seeds 000 to 002
SDK_SETTINGS = {"AUTH_SIDECAR_JWT_BEARER__REQUIRE_AUDIENCE": "false",
                "AUTH_SIDECAR_JWT_BEARER__REQUIRE_ISS_IS_SUB": "false",
                "AUTH_SIDECAR_JWT_BEARER__MAX_LIFETIME": "43200"}
# the refusals the doc shows, in its order
REFUSALS = [
    "use one client authentication method: HTTP Basic or the request body, not both",
    "parameters must be in the form body, not the URL query (RFC 6749 §2.3.1, §3.2)",
    "assertion has no aud: it must be the issuer or the token endpoint",
]


def blocks() -> list[str]:
    text = (ROOT / "docs" / "migrating.md").read_text()
    part = text[text.index(SECTIONS[0]):text.index(SECTIONS[1])]
    return re.findall(r"```sh\n(.*?)```", part, re.S)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("migrating") / "keys"
    write_new_key(folder)
    return folder


@pytest.fixture(scope="module")
def envoy(tmp_path_factory, envoy_path, keys):
    """One Envoy (both ext_authz modes) for the module; its sidecar shares the signing keys."""
    stack = start_stack(tmp_path_factory.mktemp("envoy"), {"AUTH_SIDECAR_KEYS_DIR": str(keys)})
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module", params=["memory", "redis"])
def sidecars(request, tmp_path_factory, keys):
    """The doc's `$AUTH` (defaults) and `$AUTH_SDK` (the jwt_bearer settings), on one store kind."""
    tmp = tmp_path_factory.mktemp(f"migrating-{request.param}")
    stores = (None, None)
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url.rsplit("/", 1)[0]
        stores = (url + "/14", url + "/15")
    auth = admin_sidecar(tmp, store_url=stores[0], keys=keys)
    sdk = admin_sidecar(tmp, SDK_SETTINGS, store_url=stores[1], keys=keys)
    yield auth, sdk
    auth.stop()
    sdk.stop()


def test_seed_000_to_002_examples_run_as_written_and_their_tokens_pass_envoy(sidecars, envoy, tmp_path):
    if not shutil.which("curl"):
        pytest.fail("curl is needed to run the documented examples")
    auth, sdk = sidecars
    script = "set -euo pipefail\n" + "\necho '---8<---'\n".join(blocks())
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin:" + str(Path(shutil.which("python3")).parent),
                              "AUTH": auth.http, "AUTH_SDK": sdk.http, "ADMIN": ADMIN_TOKEN})
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split("---8<---\n")) == len(blocks()) >= 9
    answers = json_objects(out.stdout)
    assert [a["error_description"] for a in answers if "error" in a] == REFUSALS
    assert all(a["error"] == "invalid_request" for a in answers if a.get("error_description") in REFUSALS[:2])
    tokens = [a for a in answers if "access_token" in a]
    # 000: login, refresh; 001: two logins, refresh; 002: client_credentials, the SDK's JWT
    assert len(tokens) == 7, out.stdout
    assert tokens[0]["expires_in"] == 3600 and tokens[0]["refresh_token"]  # Authn's lifetime, per client
    assert tokens[2]["scope"] in ("read write", "write read")
    for answer in tokens:
        for url in (envoy.grpc_url, envoy.http_url):
            r = httpx.get(url + "/carrier", headers={"authorization": f"Bearer {answer['access_token']}"})
            assert r.status_code == 200, (url, answer, r.text)
            assert r.json()["headers"]["x-user-id"], r.json()
