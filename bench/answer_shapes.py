"""What each part of an allow costs Envoy: nghttpd (a constant C server, `bench/ceilings.py`)
serving CheckResponses of several shapes behind one Envoy (--concurrency 1), wrk through each,
rows round-robin and reversed every other round; for each row the rate and Envoy's CPU per
request (utime + stime, which do not move with what else runs on the machine as rates do).

    python -m bench.answer_shapes --duration 3 --rounds 8
    python -m bench.answer_shapes --instructions [--inline-headers]   # Envoy under callgrind

Shapes: `empty` (the issue's gRPC ceiling), `ok_empty` (an empty OkHttpResponse), `remove1`
(headers_to_remove: x-actor-id only), `set1` (x-user-id only), `set6` (the six identity
headers, overwrite), `allow` (set6 + remove1: the sidecar's allow for the bench's token,
without dynamic metadata). With `--instructions`, Envoy's instructions per request
(`bench/callgrind.py`) instead of rates: the same in every run, to the percent."""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.auth.v3 import external_auth_pb2 as pb
from google.rpc.status_pb2 import Status

from bench import callgrind, ceilings, envoy_config
from bench.hop_cpu import wrk
from bench.procstat import cpu_seconds
from harness.net import free_port, wait_until
from harness.processes import Proc, envoy_binary

_SIX = (("x-tenant-id", "acme"), ("x-org-id", "org-1"), ("x-project-id", "p1"), ("x-client-id", "bench"),
        ("x-scopes", "read write"), ("x-user-id", "hit-0"))


def _framed(response: pb.CheckResponse) -> bytes:
    raw = response.SerializeToString()
    return b"\x00" + len(raw).to_bytes(4, "big") + raw  # gRPC's prefix: not compressed, length


def _answer(headers: tuple[tuple[str, str], ...] = (), remove: tuple[str, ...] = ()) -> bytes:
    if not headers and not remove:
        return ceilings.EMPTY_CHECK_RESPONSE
    ok = pb.OkHttpResponse(headers=[HeaderValueOption(header=HeaderValue(key=k, value=v),
                                                      append_action=HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)
                                    for k, v in headers], headers_to_remove=list(remove))
    return _framed(pb.CheckResponse(status=Status(code=0), ok_response=ok))


SHAPES = {"empty": _answer(),
          "ok_empty": _framed(pb.CheckResponse(ok_response=pb.OkHttpResponse())),
          "remove1": _answer(remove=("x-actor-id",)), "set1": _answer(_SIX[-1:]),
          "set6": _answer(_SIX), "allow": _answer(_SIX, ("x-actor-id",))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.answer_shapes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per row and round")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--instructions", action="store_true", help="count Envoy's instructions (callgrind)")
    p.add_argument("--requests", type=int, default=1000, help="with --instructions: requests per row")
    p.add_argument("--inline-headers", action="store_true",
                   help="Envoy registers the identity headers as inline request headers")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="auth-sidecar-shapes-"))
    ports = {name: free_port() for name in ("admin", *SHAPES)}
    backends = {name: free_port() for name in SHAPES}
    procs: list[Proc] = []
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in SHAPES}
    try:
        for name, answer in SHAPES.items():
            procs.append(ceilings.nghttpd(tmp, backends[name], answer, f"nghttpd-{name}"))
        for port in backends.values():
            wait_until(lambda port=port: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None,
                       30, "nghttpd")
        listeners = {name: envoy_config._hcm(name, [envoy_config._ext_authz_grpc(name)]) for name in SHAPES}
        config = {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["admin"]}}},
            "static_resources": {
                "listeners": [{"name": n, "address": {"socket_address": {"address": "127.0.0.1", "port_value": ports[n]}},
                               "filter_chains": [{"filters": [hcm]}]} for n, hcm in listeners.items()],
                "clusters": [envoy_config._cluster(n, backends[n], True) for n in SHAPES]}}
        if args.inline_headers:
            config["inline_headers"] = envoy_config.inline_headers()
        if args.instructions:
            counted = callgrind.EnvoyUnderCallgrind(config, tmp)
            try:
                empty = counted.per_request("empty", args.requests, {})
                for name in SHAPES:
                    count = empty if name == "empty" else counted.per_request(name, args.requests, {})
                    print(f"  {name:8s} {len(SHAPES[name]):4d} bytes  Envoy: {count:9,.0f} instructions per request "
                          f"({count / empty:5.3f} of empty)", flush=True)
            finally:
                counted.stop()
            return 0
        cfg = tmp / "envoy.yaml"
        cfg.write_text(yaml.safe_dump(config))
        envoy = Proc([envoy_binary() or "envoy", "-c", str(cfg), "--concurrency", "1", "-l", "error",
                      "--base-id", str(ports["admin"])], log=tmp / "envoy.log")
        procs.append(envoy)
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{ports['admin']}/ready").status_code == 200, 30, "envoy")
        rows = list(SHAPES)
        for i in range(args.rounds):
            for name in rows if i % 2 == 0 else rows[::-1]:
                url = f"http://127.0.0.1:{ports[name]}/"
                if args.warmup:
                    wrk(url, args.warmup, {})
                before = cpu_seconds([envoy.pid])
                started = time.monotonic()
                n = wrk(url, args.duration, {})
                rate = n / (time.monotonic() - started)
                samples[name].append((rate, (cpu_seconds([envoy.pid]) - before) / n * 1e6))
                print(f"  round {i + 1} {name:8s} {rate:8.0f} req/s  Envoy {samples[name][-1][1]:6.1f} µs/request",
                      flush=True)
    finally:
        for proc in reversed(procs):
            proc.stop()
    print("\nmedians (per-round ratios against `empty` in the same round):")
    for name, ss in samples.items():
        rate = statistics.median(s[0] for s in ss)
        cpu = statistics.median(s[1] for s in ss)
        ratio = statistics.median(a[0] / b[0] for a, b in zip(ss, samples["empty"]))
        cpu_ratio = statistics.median(a[1] / b[1] for a, b in zip(ss, samples["empty"]))
        print(f"  {name:8s} {rate:8.0f} req/s  {ratio:5.3f} of empty   Envoy {cpu:6.1f} µs/request ({cpu_ratio:5.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
