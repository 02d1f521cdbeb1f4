"""A change to the DPoP Check measured through Envoy: this checkout's sidecar and another
checkout's (`--compare`), each behind its own gRPC listener of the same Envoy, in the same
rounds (alternating, reversed every other round), with a fresh ES256 proof per request (wrk,
32 connections). Per row: requests/s and the sidecar's CPU per request (utime + stime of its
worker; CPU per request moves less with the neighbours than requests/s do); the figure is
each side's median and the median of the per-round ratios.

    python -m bench.dpop_compare --compare /work/main --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench import loaders
from bench.cases.dpop import Prover
from bench.payloads import wrk_script
from bench.procstat import cpu_seconds
from bench.stack import Stack

LISTENERS = {"this": "sidecar_grpc", "compared": "compared_grpc"}


def run(stack: Stack, prover: Prover, name: str, seconds: float, pool: int, pids: list[int]) -> tuple[float, float]:
    """(requests/s, µs of the sidecar's CPU per request) of one wrk run with a fresh pool."""
    url = stack.url[LISTENERS[name]]
    script = wrk_script(stack.tmp, f"dpop-{name}", prover.proofs(url, pool),
                        f'wrk.format(nil, nil, {{["authorization"] = "DPoP {prover.token}", ["dpop"] = line}})')
    before = cpu_seconds(pids)
    rate = loaders.wrk(url, seconds, script=script)
    requests = rate * max(int(seconds), 1)
    if requests > pool:
        raise RuntimeError(f"{name}: {rate:.0f} req/s used up the pool of {pool} proofs")
    return rate, (cpu_seconds(pids) - before) / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dpop_compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare", type=Path, required=True, help="another checkout")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pool", type=int, default=20_000, help="proofs per run (more than a run serves)")
    args = p.parse_args(argv)
    stack = Stack(Path(tempfile.mkdtemp(prefix="auth-sidecar-dpop-")), "ES256", compare=args.compare)
    got: dict[str, list[tuple[float, float]]] = {"this": [], "compared": []}
    try:
        stack.start()
        prover = Prover(stack)
        pids = {"this": stack.main.worker_pids(), "compared": stack.compared.worker_pids()}
        for name in got:  # warm-up: the token's first Check verifies it
            run(stack, prover, name, 1, 5_000, pids[name])
        for i in range(args.rounds):
            print(f"-- round {i + 1} of {args.rounds} (load average {os.getloadavg()[0]:.2f})", flush=True)
            for name in list(got) if i % 2 == 0 else list(got)[::-1]:
                got[name].append(run(stack, prover, name, args.duration, args.pool, pids[name]))
                print(f"  {name:9s} {got[name][-1][0]:8.0f} req/s {got[name][-1][1]:7.1f} µs/req", flush=True)
    finally:
        stack.stop()
    for name, samples in got.items():
        print(f"{name:9s} median {statistics.median(r for r, _ in samples):8.0f} req/s "
              f"{statistics.median(c for _, c in samples):7.1f} µs of the sidecar's CPU per request")
    cpu = statistics.median(a[1] / b[1] for a, b in zip(got["this"], got["compared"]))
    rate = statistics.median(a[0] / b[0] for a, b in zip(got["this"], got["compared"]))
    print(f"this / compared, median of the per-round ratios: CPU per request {cpu:.3f}, req/s {rate:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
