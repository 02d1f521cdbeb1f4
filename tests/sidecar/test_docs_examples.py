"""docs/token-service.md's curl examples, run as written against a live sidecar."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN
from tests.support.processes import ROOT


def blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "docs" / "token-service.md").read_text(), re.S)


def json_objects(text: str) -> list[dict]:
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        found.append(obj)
        i = end
    return found


def test_every_curl_example_works(tmp_path: Path):
    if not shutil.which("curl"):
        pytest.fail("curl is needed to run the documented examples")
    sidecar = admin_sidecar(tmp_path)
    try:
        script = "set -euo pipefail\n" + "\necho '---8<---'\n".join(blocks())
        out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin:" + str(Path(shutil.which("python3")).parent),
                                  "AUTH": sidecar.http, "ADMIN": ADMIN_TOKEN})
        assert out.returncode == 0, out.stderr
        outputs = out.stdout.split("---8<---\n")
        assert len(outputs) == len(blocks()) >= 6
        answers = json_objects(out.stdout)
        tokens = [a for a in answers if "access_token" in a]
        assert len(tokens) >= 5  # password, refresh, client_credentials, secret, jwt-bearer
        assert not [a for a in answers if "error" in a]
        introspections = [a for a in answers if "active" in a]
        assert introspections[0]["active"] is True and introspections[-1] == {"active": False}
        assert "}200\n" in out.stdout  # the revocation's status
    finally:
        sidecar.stop()
