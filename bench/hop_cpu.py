"""Where an ext_authz request's CPU goes: wrk through the bench's Envoy, and for each row the
CPU (utime + stime from /proc/<pid>/stat, before and after) that Envoy, the check server
(the sidecar's worker, nghttpd, nginx) and wrk spent per request. CPU per request does not
move with what else runs on the machine, as requests per second do.

    python -m bench.hop_cpu --duration 3 --rounds 5
    python -m bench.hop_cpu --compare /work/main   # also a sidecar of another checkout, alternating

Rows run round-robin, in reverse order every other round; each figure is the median of its
rounds. `--compare` is how a change to the Check path is measured through Envoy: the two
checkouts' sidecars behind the same Envoy, in the same rounds."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.procstat import cpu_seconds
from bench.stack import Stack

# row -> (Envoy listener, the check server's key in Stack.pids)
ROWS = {"envoy_noauth": ("noauth", None), "ceiling_grpc": ("ceiling_grpc", "ceiling_grpc"),
        "ceiling_grpc_allow": ("ceiling_grpc_allow", "ceiling_grpc_allow"),
        "sidecar_grpc_hit": ("sidecar_grpc", "sidecar"), "compared_grpc_hit": ("compared_grpc", "compared"),
        "sidecar_grpc_hit_workers2": ("sidecar_grpc_w2", "sidecar2"),
        "ceiling_http": ("ceiling_http", "ceiling_http"), "sidecar_http_hit": ("sidecar_http", "sidecar")}


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, out)]  # nginx: its master and its worker


def counters(pids: list[int]) -> dict[str, int]:
    """Read and write system calls (/proc/<pid>/io) and voluntary context switches (sleeps
    in epoll_wait: wake-ups) the processes made so far."""
    out = {"reads": 0, "writes": 0, "wakeups": 0}
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            k, _, v = line.partition(": ")
            if k in ("syscr", "syscw"):
                out["reads" if k == "syscr" else "writes"] += int(v)
        for task in Path(f"/proc/{pid}/task").iterdir():  # every thread (Envoy's worker is not its main)
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    out["wakeups"] += int(line.split()[1])
    return out


def wrk(url: str, seconds: float, headers: dict[str, str]) -> int:
    cmd = ["wrk", "-t1", "-c32", f"-d{max(int(seconds), 1)}s", "--timeout", "5s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    if re.search(r"Non-2xx or 3xx responses: [1-9]", out):
        raise RuntimeError(f"{url}: non-2xx answers:\n{out}")
    return int(re.search(r"(\d+) requests in", out).group(1))


def measure(stack: Stack, pids: dict[str, list[int]], row: str, seconds: float, warmup: float) -> dict[str, float]:
    listener, server = ROWS[row]
    if warmup:
        wrk(stack.url[listener], warmup, stack.auth)
    procs = {"envoy": [stack.envoy.pid]}
    if server:
        procs["server"] = pids[server]
    before = {k: cpu_seconds(v) for k, v in procs.items()}
    calls = counters(procs["server"]) if server else {}
    envoy_calls = counters(procs["envoy"])
    loader = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    n = wrk(stack.url[listener], seconds, stack.auth)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {k: (cpu_seconds(v) - before[k]) / n * 1e6 for k, v in procs.items()}
    out["wrk"] = (after.ru_utime + after.ru_stime - loader.ru_utime - loader.ru_stime) / n * 1e6
    out["total"] = sum(out.values())
    out["req/s"] = n / elapsed
    # Envoy's sleeps per request (how often it ran out of work: waiting for answers), its reads
    # and writes per request (how its events batched)
    out.update({f"envoy_{k}": (v - envoy_calls[k]) / n for k, v in counters(procs["envoy"]).items()})
    if server:  # per request, of the check server
        out.update({f"server_{k}": (v - calls[k]) / n for k, v in counters(procs["server"]).items()})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hop_cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per row and round")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", help="comma-separated rows")
    p.add_argument("--compare", type=Path, help="another checkout: its sidecar as the row compared_grpc_hit")
    p.add_argument("--out", type=Path, help="write the samples and medians as JSON")
    args = p.parse_args(argv)
    rows = [r for r in ROWS if (args.only is None or r in args.only.split(","))
            and (r != "compared_grpc_hit" or args.compare)]
    stack = Stack(Path(tempfile.mkdtemp(prefix="auth-sidecar-hop-")), "ES256", compare=args.compare,
                  workers2="sidecar_grpc_hit_workers2" in rows)
    samples: dict[str, list[dict[str, float]]] = {r: [] for r in rows}
    try:
        stack.start()
        for row in stack.missing:  # its server is not installed
            print(f"  {row}: {stack.missing[row]}")
            rows = [r for r in rows if r != row]
            samples.pop(row, None)
        pids = {row: children(proc.pid) for row, proc in stack.servers.items()}
        pids["sidecar"] = stack.main.worker_pids()
        if stack.main2 is not None:
            pids["sidecar2"] = stack.main2.worker_pids()  # both workers
        if args.compare:
            pids["compared"] = stack.compared.worker_pids()
        for i in range(args.rounds):
            print(f"-- round {i + 1} of {args.rounds} (load average {os.getloadavg()[0]:.2f})", flush=True)
            for row in rows if i % 2 == 0 else rows[::-1]:  # no row always runs after the same one
                s = measure(stack, pids, row, args.duration, args.warmup)
                samples[row].append(s)
                print(f"  {row:20s} " + "  ".join(f"{k} {v:.2f}" if k.startswith("server_") else f"{k} {v:.1f}"
                                                 for k, v in s.items()), flush=True)
    finally:
        stack.stop()
    medians = {row: {k: round(statistics.median(s[k] for s in ss), 3) for k in ss[0]} for row, ss in samples.items()}
    print("\nmedians, µs of CPU per request (req/s for the rate):")
    print(f"  {'row':20s} {'envoy':>8s} {'server':>8s} {'wrk':>8s} {'total':>8s} {'req/s':>9s}"
          "   server's reads, writes, wake-ups per request; Envoy's wake-ups")
    for row, m in medians.items():
        print(f"  {row:20s} {m['envoy']:8.1f} {m.get('server', 0):8.1f} {m['wrk']:8.1f} {m['total']:8.1f} "
              f"{m['req/s']:9.0f}   {m.get('server_reads', 0):.2f} {m.get('server_writes', 0):.2f} "
              f"{m.get('server_wakeups', 0):.2f}; {m['envoy_wakeups']:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"samples": samples, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
