"""One Envoy worker, two sidecar workers: with `grpc_max_concurrent_streams: 16` the gRPC port
asks each connection to keep to 16 streams, so under load Envoy opens more connections to the
sidecar and the supervisor hands them to both workers (without it, Envoy's one connection per
worker thread keeps every Check on one of ours). Real Envoy, real `hey` as the load, Redis as
the shared store."""

from __future__ import annotations

import re
import shutil
import subprocess

from authz.keys import write_new_key
from tests.conftest import need_binary
from tests.e2e.conftest import start_stack, stop_stack
from tests.sidecar.test_balancer import per_worker, workers
from tests.support.net import wait_until


def test_a_busy_envoy_worker_reaches_both_sidecar_workers(tmp_path, envoy_path, redis_server):
    hey = need_binary("hey", shutil.which("hey"))
    write_new_key(tmp_path / "keys")
    s = start_stack(tmp_path, {"AUTH_SIDECAR_KEYS_DIR": str(tmp_path / "keys"),
                               "AUTH_SIDECAR_STORE_URL": redis_server.url.replace("/0", "/5"),
                               "AUTH_SIDECAR_GRPC_MAX_CONCURRENT_STREAMS": "16"},
                    args=["--workers", "2"])
    try:
        wait_until(lambda: s.sidecar.logs().count('"msg": "serving"') == 2, what="both workers")
        pids = workers(s.sidecar.proc.pid)
        token = s.sidecar.mint("--sub", "u1", "--tenant", "acme", "--scope", "read", "--ttl", "600")
        # 64 requests in flight at Envoy's one worker: more Checks than one connection is asked to carry
        out = subprocess.run([hey, "-n", "4000", "-c", "64", "-H", f"Authorization: Bearer {token}",
                              s.grpc_url + "/orders"], capture_output=True, text=True, timeout=120)
        codes = {int(code): int(n) for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out.stdout)}
        assert list(codes) == [200] and codes[200] >= 3900 and "Error distribution" not in out.stdout, \
            out.stdout[-1500:]
        held = per_worker(pids, s.sidecar.grpc_port)  # Envoy keeps its upstream connections open
        assert sum(held) >= 2 and all(n >= 1 for n in held), held
    finally:
        stop_stack(s)
