"""Envoy's instructions per request behind each check server, counted by valgrind's callgrind:
unlike rates and CPU times, instruction counts do not move with what else the host runs, so
a difference of 1 % between two answers shows in one short run.

    python -m bench.callgrind [--requests 1000] [--rows ceiling_grpc,ceiling_grpc_allow,sidecar_grpc]
    python -m bench.callgrind --no-inline-headers   # the identity headers not registered inline

The bench's stack starts as for `python -m bench` (its own Envoy serves nothing here); a second
Envoy with the same listeners runs under callgrind; for each row, `hey` sends a warm-up, the
counters are zeroed, `hey -n N -c 8` sends N requests, the counters are dumped: instructions of
every Envoy thread over those N requests. Envoy under callgrind runs ~50× slower: the check
servers' share of the time changes, their instructions are not counted. Debian: valgrind, hey.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.stack import Stack
from harness.net import free_port, wait_until
from harness.processes import envoy_binary

class EnvoyUnderCallgrind:
    """An Envoy running `config` (its admin and listener ports replaced by free ones) under
    callgrind; `per_request` counts the instructions one row's requests cost it."""

    def __init__(self, config: dict, tmp: Path) -> None:
        self.tmp = tmp
        config = yaml.safe_load(yaml.safe_dump(config))  # a copy
        self.admin = free_port()
        config["admin"]["address"]["socket_address"]["port_value"] = self.admin
        self.url: dict[str, str] = {}
        for listener in config["static_resources"]["listeners"]:
            port = free_port()
            listener["address"]["socket_address"]["port_value"] = port
            self.url[listener["name"]] = f"http://127.0.0.1:{port}/"
        (tmp / "callgrind-envoy.yaml").write_text(yaml.safe_dump(config))
        self.out = tmp / "callgrind"
        self.out.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}/cg.%p", envoy_binary() or "envoy",
             "-c", str(tmp / "callgrind-envoy.yaml"), "--concurrency", "1", "-l", "error",
             "--base-id", str(self.admin)],
            stdout=subprocess.DEVNULL, stderr=(tmp / "callgrind.log").open("w"))
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.admin}/ready", timeout=5).status_code == 200, 300,
                   "Envoy under callgrind")

    def per_request(self, row: str, n: int, headers: dict[str, str]) -> float:
        args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
        url = self.url[row]
        subprocess.run(["hey", "-n", "200", "-c", "8", *args, url], capture_output=True, check=True)
        subprocess.run(["callgrind_control", "-z", str(self.proc.pid)], capture_output=True, check=True)
        out = subprocess.run(["hey", "-n", str(n), "-c", "8", *args, url], capture_output=True, text=True,
                             check=True).stdout
        answered = re.search(r"\[200\]\s+(\d+) responses", out)
        if answered is None or int(answered.group(1)) != n:
            raise RuntimeError(f"{row}: not every request was answered 200:\n{out}")
        before = set(self.out.iterdir())
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], capture_output=True, check=True)
        deadline = time.monotonic() + 30
        while True:  # one dump file per thread, written after the command returns
            dumps = set(self.out.iterdir()) - before
            totals = [_total(p) for p in dumps]
            if dumps and None not in totals:
                return sum(totals) / n  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                raise RuntimeError("callgrind wrote no dump")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _total(path: Path) -> int | None:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=1000, help="requests counted per row and round")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--rows", default="ceiling_grpc,ceiling_grpc_allow,sidecar_grpc",
                   help="the bench Envoy's listeners (bench/envoy_config.py)")
    p.add_argument("--no-inline-headers", action="store_true",
                   help="Envoy without the bench's `inline_headers` (the identity headers)")
    args = p.parse_args(argv)
    stack = Stack(Path(tempfile.mkdtemp(prefix="auth-sidecar-callgrind-")), "ES256", workers2=False)
    envoy = None
    try:
        stack.start()
        config = yaml.safe_load((stack.tmp / "envoy.yaml").read_text())
        if args.no_inline_headers:
            config.pop("inline_headers", None)
        envoy = EnvoyUnderCallgrind(config, stack.tmp)
        for i in range(args.rounds):
            for row in args.rows.split(","):
                count = envoy.per_request(row, args.requests, stack.auth)
                print(f"  round {i + 1} {row:22s} Envoy: {count:9,.0f} instructions per request", flush=True)
    finally:
        if envoy is not None:
            envoy.stop()
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
