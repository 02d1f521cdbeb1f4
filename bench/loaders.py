"""wrk, hey and h2load: run for a fixed time, parse what they print."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def wrk(url: str, duration: float, connections: int = 32, headers: dict[str, str] | None = None,
        script: Path | None = None) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(int(duration), 1)}s", "--timeout", "5s"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx and int(non2xx.group(1)) > 0:
        raise RuntimeError(f"{url}: {non2xx.group(1)} non-2xx answers:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def hey_latency(url: str, duration: float, rate: int, headers: dict[str, str] | None = None,
                workers: int = 2) -> tuple[float, float]:
    """p50 and p99 (ms) at a fixed total rate (`workers` × rate/workers). Few workers: hey's
    workers tick together, so many of them send in bursts that measure queueing, not latency."""
    cmd = ["hey", "-z", f"{max(int(duration), 1)}s", "-c", str(workers), "-q", str(rate // workers)]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    p50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1000
    p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1000
    return p50, p99


def h2load(url: str, body: Path, duration: float, clients: int = 8, streams: int = 64) -> float:
    """Requests/s of gRPC Checks straight at the sidecar. h2load shares the two cores with it:
    64 streams per connection (as Envoy multiplexes) cost it ~7 µs per request, 8 streams
    ~14 µs, which at ~20,000 req/s per worker is a fifth of a core taken from the workers."""
    cmd = ["h2load", "-D", str(max(int(duration), 1)), "-c", str(clients), "-m", str(streams), "-t", "1",
           "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    failed = re.search(r"(\d+) failed", out)
    if failed and int(failed.group(1)) > 0:
        raise RuntimeError(f"h2load: failures:\n{out}")
    return float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
