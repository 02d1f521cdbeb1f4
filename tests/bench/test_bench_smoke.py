"""The bench harness runs end to end and produces every row (no speed is asserted here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from bench import ceilings
from bench.run import ROWS
from tests.conftest import IN_CI


def test_harness_produces_every_row(tmp_path, envoy_path, redis_server_path):
    missing = [tool for tool in ("wrk", "hey", "h2load") if not shutil.which(tool)]
    missing += [tool for tool in ("nginx", "nghttpd") if not ceilings.binary(tool)]
    if missing:
        if IN_CI:
            pytest.fail(f"bench tools missing in CI: {missing}")
        pytest.skip(f"bench tools missing: {missing} "
                    "(apt-get install wrk hey nghttp2-client nginx-light nghttp2-server)")
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "bench", "--duration", "2", "--warmup", "0", "--quick",
                          "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads(out.read_text())
    produced = {row for row, r in doc["results"].items() if r.get("value") is not None}
    assert set(ROWS) <= produced, {row: doc["results"].get(row) for row in set(ROWS) - produced}
    assert doc["ratios"] and doc["machine"]["cores"] >= 1
    assert run.returncode == 0
