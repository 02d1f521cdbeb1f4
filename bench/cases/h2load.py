"""gRPC Checks straight at the sidecar (h2load, no Envoy), one worker and two workers
sharing Redis, alternating (a drift of the machine hits both alike); also the CPU µs per
request of the sidecar's workers and of h2load."""

from __future__ import annotations

import resource

from bench import loaders
from bench.payloads import grpc_body
from bench.procstat import cpu_seconds
from bench.recorder import Recorder
from bench.stack import Stack
from harness.processes import Sidecar

CHECK = "/envoy.service.auth.v3.Authorization/Check"


def run(rec: Recorder, stack: Stack) -> None:
    body = grpc_body(stack.tmp, stack.token)
    two = None
    if rec.want("h2load_grpc_workers2"):
        two = stack.sidecar(workers=2, AUTH_SIDECAR_STORE_URL=stack.redis_url())
    spent: dict[str, tuple[float, float]] = {}

    def h2load(row: str, sidecar: Sidecar, d: float) -> float:
        pids = sidecar.worker_pids()
        before, loader = cpu_seconds(pids), resource.getrusage(resource.RUSAGE_CHILDREN)
        rate = loaders.h2load(f"http://127.0.0.1:{sidecar.grpc_port}{CHECK}", body, d)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        n = max(rate * d, 1)
        spent[row] = ((cpu_seconds(pids) - before) / n * 1e6,
                      (after.ru_utime + after.ru_stime - loader.ru_utime - loader.ru_stime) / n * 1e6)
        return rate

    for _ in range(rec.long_rounds):
        for row, sidecar in (("h2load_grpc_workers1", stack.main), ("h2load_grpc_workers2", two)):
            if sidecar is not None and rec.want(row):
                rec.measure(row, lambda d: h2load(row, sidecar, d))
                if rec.ok(row):  # the timed run's CPU, not the warm-up's
                    rec.record(row + "_cpu", spent[row][0], "µs/req")
                    rec.record(row + "_loader_cpu", spent[row][1], "µs/req")
    if two:
        two.stop()
