"""The benchmark harness: starts everything on loopback, runs each case for a fixed time
after a warm-up, stops everything, prints one table and writes a JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench.cases import h2load, latency, proxy, rss, tokens
from bench.ratios import ratios
from bench.recorder import Recorder
from bench.stack import Stack
from harness.processes import ROOT

ROWS = ["envoy_noauth", "envoy_jwt_authn", "envoy_jwt_authn_cached", "sidecar_grpc_hit", "sidecar_http_hit",
        "sidecar_grpc_hit_workers2",
        "sidecar_grpc_miss", "sidecar_http_miss", "floor_grpc", "floor_http", "ceiling_grpc", "ceiling_grpc_allow",
        "ceiling_http",
        "h2load_grpc_workers1", "h2load_grpc_workers2",
        "h2load_grpc_workers1_cpu", "h2load_grpc_workers2_cpu", "h2load_grpc_workers1_loader_cpu",
        "h2load_grpc_workers2_loader_cpu",
        "latency_noauth", "latency_grpc", "latency_http", "latency_floor_grpc", "latency_floor_http",
        "token_client_credentials", "token_exchange", "token_password", "token_password_cpu",
        "argon2_alone", "argon2_cpu", "token_refresh", "token_client_credentials_redis", "token_refresh_redis", "rss_100k"]
ROWS += ["sidecar_grpc_dpop", "sidecar_http_dpop"]
# the order of the rows above; the DPoP rows run in the proxy case's rounds (bench/cases/dpop.py)
CASES = (proxy, h2load, latency, tokens, rss)


def run(rec: Recorder, alg: str) -> dict:
    stack = Stack(Path(tempfile.mkdtemp(prefix="auth-sidecar-bench-")), alg,
                  workers2=rec.want("sidecar_grpc_hit_workers2"))
    try:
        stack.start()
        print(f"auth-sidecar bench: {rec.d:g}s per case after {rec.w:g}s warm-up", flush=True)
        for case in CASES:
            case.run(rec, stack)
    finally:
        stack.stop()
    return rec.results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per case")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    p.add_argument("--quick", action="store_true", help="small token pools (CI smoke)")
    p.add_argument("--only", help="comma-separated rows to run")
    p.add_argument("--repeat", type=int, default=1, help="rounds of the paired cases (proxy, h2load, latency, password/argon2); each row is the median")
    p.add_argument("--alg", default="ES256", choices=["ES256", "RS256", "EdDSA"],
                   help="signing key of the IdP tokens the proxy cases verify (the token service signs ES256)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = p.parse_args(argv)
    rec = Recorder(args.duration, args.warmup, args.quick, set(args.only.split(",")) if args.only else None,
                   args.repeat)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results = run(rec, args.alg)
    rat = ratios(results)
    print("\nratios (same run):")
    for k, val in rat.items():
        print(f"  {k:48s} {val}")
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    doc = {"date": started, "machine": {"cpu": cpu, "cores": len(os.sched_getaffinity(0)),
                                        "python": platform.python_version()},
           "duration_s": args.duration, "alg": args.alg, "results": results, "ratios": rat}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"\nwrote {out}")
    failed = [k for k, v in results.items() if v.get("value") is None]
    return 1 if failed else 0
