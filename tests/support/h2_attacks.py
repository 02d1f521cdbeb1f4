"""Attacks on the gRPC port's HTTP/2, from the outside, and a prober that measures what
they do to everyone else.

An attack runs in its own process (the prober's timings must not wait for the attacker's
GIL) and reconnects whenever the server closes its connection, so it keeps the pressure on
for its whole duration. The prober asks gRPC health, an ext_authz Check (both on their own
connection) and HTTP /readyz in turn, and records the longest answer and the sidecar's RSS.

    python -m tests.support.h2_attacks [ROOT [SECONDS]] [AUTH_SIDECAR_X=value …]   # the sidecar at ROOT
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from envoy.service.auth.v3 import external_auth_pb2 as pb
from grpc_health.v1 import health_pb2

from tests.support.h2_attacker import ATTACKS, CHECK, HOLDING, run_attack


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class ProbeResult:
    longest: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    rss_before: float = 0.0
    rss_max: float = 0.0

    @property
    def stall(self) -> float:
        return max(self.longest.values(), default=0.0)


class Prober(threading.Thread):
    """gRPC health and Check (each on its own connection) and HTTP /readyz, one after the
    other every 20 ms, each with a 5 s timeout."""

    def __init__(self, grpc_target: str, http_base: str, pid: int, token: str | None = None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.health_channel = grpc.insecure_channel(grpc_target)
        self.check_channel = grpc.insecure_channel(grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.health = self.health_channel.unary_unary("/grpc.health.v1.Health/Check",
                                                      request_serializer=None, response_deserializer=None)
        self.check = self.check_channel.unary_unary(CHECK, request_serializer=None, response_deserializer=None)
        request = pb.CheckRequest()
        if token:
            request.attributes.request.http.headers["authorization"] = f"Bearer {token}"
        self.check_request = request.SerializeToString()
        self.health_request = health_pb2.HealthCheckRequest(service="").SerializeToString()
        self.http = httpx.Client(base_url=http_base, timeout=5)
        self.result = ProbeResult()
        self._halt = threading.Event()
        self.probe_once()  # connections up before the attack starts
        self.result = ProbeResult(rss_before=rss_mb(pid))

    def probe_once(self) -> None:
        for name, call in (("grpc_health", lambda: self.health(self.health_request, timeout=5)),
                           ("grpc_check", lambda: self.check(self.check_request, timeout=5)),
                           ("http_readyz", lambda: self.http.get("/readyz").raise_for_status())):
            start = time.monotonic()
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - a failed probe is a finding, not a crash
                self.result.failures.append(f"{name}: {type(exc).__name__}")
            took = time.monotonic() - start
            self.result.longest[name] = max(self.result.longest.get(name, 0.0), took)

    def run(self) -> None:
        while not self._halt.is_set():
            self.probe_once()
            try:
                self.result.rss_max = max(self.result.rss_max, rss_mb(self.pid))
            except OSError:
                pass
            self._halt.wait(0.02)

    def __enter__(self) -> "Prober":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join(15)
        self.health_channel.close()
        self.check_channel.close()
        self.http.close()


def measure(sidecar, name: str, duration: float) -> tuple[dict, ProbeResult]:
    with Prober(sidecar.grpc, sidecar.http, sidecar.proc.pid) as prober:
        attack = run_attack(sidecar.grpc_port, name, duration)
    return attack, prober.result


def main(argv: list[str]) -> int:
    from tests.support.processes import Sidecar

    env = dict(a.split("=", 1) for a in argv if "=" in a)  # settings, e.g. AUTH_SIDECAR_GRPC_…=1
    argv = [a for a in argv if "=" not in a]
    root = Path(argv[0]).resolve() if argv else Path(__file__).resolve().parents[2]
    duration = float(argv[1]) if len(argv) > 1 else 3.0

    class At(Sidecar):  # the sidecar of another checkout (the code before a change)
        def start(self, wait_ready: bool = True):
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen([sys.executable, "-m", "sidecar.cli", "serve"], env=self.env,
                                         stdout=self._log, stderr=subprocess.STDOUT, cwd=root)
            self.wait_ready()
            return self

    print(f"| attack ({duration:.0f} s) | longest probe answer (s) | RSS growth (MB) | attacker connections "
          "| GOAWAY codes | RST_STREAM codes | failed probes |")
    print("|---|---|---|---|---|---|---|")
    for name in {**ATTACKS, **HOLDING}:
        sidecar = At(env=env).start()
        try:
            attack, probe = measure(sidecar, name, duration)
        finally:
            sidecar.stop()
        print(f"| {name} | {probe.stall:.2f} | {probe.rss_max - probe.rss_before:+.1f} | {attack['connections']} "
              f"| {attack['goaways'] or '-'} | {attack['resets'] or '-'} | {len(probe.failures)} |", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", ".")
    raise SystemExit(main(sys.argv[1:]))
