"""`/openapi.json` against the server it describes: schemathesis, with every check on, sends
generated valid and invalid requests to every operation (token service and admin API) of a
real `auth-sidecar serve`
and finds nothing (no 500, no status, content type, header or body the document does not
promise, no valid request refused, no invalid one accepted, no unsupported method answered).
Bounded: a fixed seed and a few examples per operation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN

EXAMPLES = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openapi")
    s = admin_sidecar(tmp)
    yield s
    s.stop()
    assert "Traceback" not in s.logs(), s.logs()[-3000:]


# a PATCH or DELETE whose If-Match names no ETag of the record is refused with 412, whatever
# the schema: the record's state decides, as it does for an unknown id (404)
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
"""


def test_schemathesis_finds_nothing(server, tmp_path):
    (tmp_path / "schemathesis.toml").write_text(CONFIG)  # found in the working directory
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.http}/openapi.json", "--url", server.http,
         "--checks", "all", "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
         "--max-examples", str(EXAMPLES), "--seed", "1", "--workers", "1",
         "--phases", "examples,coverage,fuzzing,stateful",
         "--request-timeout", "10", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
