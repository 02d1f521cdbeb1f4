"""The benchmark harness: starts everything on loopback, runs each case for a fixed time
after a warm-up, stops everything, prints one table and writes a JSON file."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import yaml

from authz.keys import KeyRing, private_pem, public_pem, write_new_key
from bench import envoy_config, loaders
from bench.stack import ROOT, Proc, Sidecar, envoy_binary, free_port, wait_for
from sidecar.oauth.issuer import TokenIssuer

ISSUER = "http://127.0.0.1:8080"
# The proxy cases verify tokens of an external IdP (a trusted issuer with a pinned key), as a
# mesh usually does; `--alg` picks its key. The token service signs with its own ES256 key.
IDP, API = "https://idp.bench.example", "bench-api"
ADMIN = "bench-admin-token"
ROWS = ["envoy_noauth", "envoy_jwt_authn", "sidecar_grpc_hit", "sidecar_http_hit", "sidecar_grpc_miss",
        "sidecar_http_miss", "floor_grpc", "floor_http", "h2load_grpc_workers1", "h2load_grpc_workers2",
        "h2load_grpc_workers1_cpu", "h2load_grpc_workers2_cpu", "h2load_grpc_workers1_loader_cpu",
        "h2load_grpc_workers2_loader_cpu",
        "latency_noauth", "latency_grpc", "latency_http", "latency_floor_grpc", "latency_floor_http",
        "token_client_credentials", "token_password", "token_password_cpu",
        "argon2_alone", "argon2_cpu", "token_refresh", "token_client_credentials_redis", "token_refresh_redis", "rss_100k"]


def mint(issuer: TokenIssuer, n: int, prefix: str, start: int = 0) -> list[str]:
    return [issuer.access_token(subject=f"{prefix}-{i}", client_id="bench", tenant="acme", scope=["read", "write"],
                                ttl=3600, org_id="org-1", project_ids=["p1"]).token for i in range(start, start + n)]


def _mint_part(pem: bytes, issuer: str, audience: str, n: int, prefix: str, start: int) -> list[str]:
    return mint(TokenIssuer(KeyRing.from_pem(pem), issuer, audience), n, prefix, start)


class Minter:
    """Distinct valid tokens of one key, signed on every core (an RSA signature takes ~1 ms)."""

    def __init__(self, ring: KeyRing, issuer: str, audience: str) -> None:
        self.ring, self.issuer, self.audience = ring, issuer, audience
        self.pem = private_pem(ring.current.private_key)

    def __call__(self, n: int, prefix: str) -> list[str]:
        cores = len(os.sched_getaffinity(0))
        if n < 2000 or cores < 2:
            return mint(TokenIssuer(self.ring, self.issuer, self.audience), n, prefix)
        size = -(-n // cores)
        with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = [pool.submit(_mint_part, self.pem, self.issuer, self.audience, min(size, n - start), prefix, start)
                     for start in range(0, n, size)]
            return [token for part in parts for token in part.result()]


def wrk_script(tmp: Path, name: str, lines: list[str], request: str) -> Path:
    """A wrk Lua script that cycles through `lines` (one per request); `request` is the Lua
    expression building the request from `line`. Requests are built once, in init (after wrk
    sets Host): building one per request cost wrk ~50 µs of the two cores, against ~13 µs for
    its static request, and the rows with a pool would have paid for it."""
    data = tmp / f"{name}.txt"
    data.write_text("\n".join(lines) + "\n")
    script = tmp / f"{name}.lua"
    script.write_text(f"""
requests = {{}}
i = 0
init = function(args)
  for line in io.lines("{data}") do requests[#requests + 1] = {request} end
end
request = function()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
""")
    return script


def token_lua(tmp: Path, name: str, tokens: list[str]) -> Path:
    return wrk_script(tmp, name, tokens, 'wrk.format(nil, nil, {["authorization"] = "Bearer " .. line})')


def post_lua(tmp: Path, name: str, auth: tuple[str, str], bodies: list[str]) -> Path:
    import base64
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return wrk_script(tmp, name, bodies, f'wrk.format("POST", "/oauth/token", {{["Authorization"] = "Basic {basic}", '
                                          '["Content-Type"] = "application/x-www-form-urlencoded"}, line)')


def grpc_body(tmp: Path, token: str) -> Path:
    from envoy.service.auth.v3 import external_auth_pb2 as pb
    req = pb.CheckRequest()
    req.attributes.request.http.headers["authorization"] = f"Bearer {token}"
    req.attributes.request.http.path = "/"
    req.attributes.context_extensions["required_scopes"] = "read"
    raw = req.SerializeToString()
    path = tmp / "check.bin"
    path.write_bytes(b"\x00" + struct.pack(">I", len(raw)) + raw)
    return path


def setup_app(base: str, grant_types: list[str]) -> dict:
    h = {"authorization": f"Bearer {ADMIN}"}
    tenant = f"t{time.monotonic_ns()}"
    httpx.post(base + "/admin/tenants", json={"id": tenant, "name": tenant}, headers=h).raise_for_status()
    client = httpx.post(base + f"/admin/tenants/{tenant}/clients", headers=h, json={
        "name": "bench", "grant_types": grant_types, "scopes": ["read", "write"]}).json()
    httpx.post(base + f"/admin/tenants/{tenant}/users", headers=h, json={
        "username": "alice", "password": "correct horse", "org_id": "o", "project_ids": ["p"]}).raise_for_status()
    return client


async def refresh_pool(base: str, client: dict, n: int) -> list[str]:
    auth = (client["client_id"], client["client_secret"])
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30) as c:
        async def one() -> str:
            async with sem:
                for attempt in range(3):  # a keep-alive connection the server just closed: retry
                    try:
                        r = await c.post("/oauth/token", data={"grant_type": "password", "username": "alice",
                                                               "password": "correct horse"})
                        return r.json()["refresh_token"]
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")
        return await asyncio.gather(*(one() for _ in range(n)))


def argon2_rate(duration: float, threads: int = 2, cpu_ms: list[float] | None = None) -> float:
    """Password checks per second that argon2id alone (OWASP parameters) allows on this machine;
    appends the CPU milliseconds of one check to cpu_ms."""
    from argon2 import PasswordHasher
    ph = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    stored = ph.hash("correct horse")
    count = [0] * threads
    started = time.process_time()  # this process does nothing else meanwhile
    stop = time.monotonic() + duration

    def work(i: int) -> None:
        while time.monotonic() < stop:
            ph.verify(stored, "correct horse")
            count[i] += 1
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if cpu_ms is not None and sum(count):
        cpu_ms.append((time.process_time() - started) / sum(count) * 1000)
    return sum(count) / duration


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def fill_cache(target: str, tokens: list[str]) -> None:
    import grpc
    from envoy.service.auth.v3 import external_auth_pb2 as pb
    from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pb_grpc.AuthorizationStub(ch)
        sem = asyncio.Semaphore(64)

        async def one(t: str) -> None:
            req = pb.CheckRequest()
            req.attributes.request.http.headers["authorization"] = f"Bearer {t}"
            async with sem:
                r = await stub.Check(req)
            assert r.status.code == 0
        await asyncio.gather(*(one(t) for t in tokens))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Bench:
    def __init__(self, duration: float, warmup: float, quick: bool, only: set[str] | None, alg: str = "ES256",
                 repeat: int = 1) -> None:
        self.d, self.w, self.quick, self.only, self.alg, self.repeat = duration, warmup, quick, only, alg, repeat
        self.results: dict[str, dict] = {}
        self.samples: dict[str, list[float]] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="auth-sidecar-bench-"))
        self.procs: list[Proc] = []
        self._redis_url: str | None = None

    def redis_url(self) -> str:
        """One redis-server for every row that needs a shared store (started on first use): several
        workers cannot share the memory store, and serve refuses to start them on it."""
        if self._redis_url is None:
            port = free_port()
            self.procs.append(Proc(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]))
            import redis as redis_lib
            wait_for(lambda: redis_lib.Redis(port=port).ping(), 10, "redis")
            self._redis_url = f"redis://127.0.0.1:{port}/0"
        return self._redis_url

    @property
    def long_rounds(self) -> int:
        """Rounds of the rows one hiccup of a shared 2-core host moves most: a p99 is the 50
        slowest of 5,000 requests, a password round ~350 logins, an h2load pair two loaders'
        share of the same cores. With --repeat, at least 5."""
        return max(self.repeat, 5) if self.repeat > 1 else 1

    def want(self, row: str) -> bool:
        return self.only is None or row in self.only

    def record(self, row: str, value: float, unit: str, **extra) -> None:
        """One sample of a row; with --repeat the row's value is the median of its samples."""
        samples = self.samples.setdefault(row, [])
        samples.append(round(value, 2))
        self.results[row] = {"value": statistics.median(samples), "unit": unit, **extra}
        if len(samples) > 1:
            self.results[row]["samples"] = samples
        print(f"  {row:34s} {value:12.1f} {unit}", flush=True)

    def record_latency(self, row: str, p50: float, p99: float) -> None:
        samples = self.samples.setdefault(row, [])
        samples.append((p50, p99))
        p50_median = statistics.median(s[0] for s in samples)
        p99_median = statistics.median(s[1] for s in samples)
        self.results[row] = {"value": p99_median, "unit": "ms p99", "p50_ms": p50_median, "p99_ms": p99_median}
        if len(samples) > 1:
            self.results[row]["samples"] = samples
        print(f"  {row:34s} p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)

    def measure(self, row: str, fn, unit: str = "req/s") -> None:
        if not self.want(row):
            return
        try:
            if self.w and unit == "req/s":
                fn(self.w)  # warm-up
            self.record(row, fn(self.d), unit)
        except Exception as exc:
            self.results[row] = {"value": None, "unit": unit, "error": str(exc)[:500]}
            print(f"  {row:34s} FAILED: {str(exc)[:200]}", flush=True)

    def run(self) -> dict:
        keys = self.tmp / "keys"
        write_new_key(keys, "ES256")  # the token service's own key
        own = Minter(KeyRing.from_dir(keys), ISSUER, ISSUER)
        idp_ring = KeyRing.ephemeral_key(self.alg)
        idp = Minter(idp_ring, IDP, API)
        token = idp(1, "hit")[0]
        routes = json.dumps([{"path_prefix": "/", "required_scopes": "read"}])
        trusted = json.dumps([{"issuer": IDP, "audiences": [API], "keys": [{
            "kid": idp_ring.current.kid, "alg": self.alg,
            "pem": public_pem(idp_ring.current.private_key.public_key()).decode()}]}])
        base_env = {"AUTH_SIDECAR_KEYS_DIR": str(keys), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN,
                    "AUTH_SIDECAR_ROUTES": routes, "AUTH_SIDECAR_TRUSTED_ISSUERS": trusted}
        try:
            main = Sidecar(self.tmp, base_env)
            self.procs.append(main)
            ports = {name: free_port() for name in ("admin", "noauth", "jwt_authn", "sidecar_grpc", "sidecar_http",
                                                    "floor_grpc", "floor_http", "floor_grpc_port", "floor_http_port")}
            ports.update(sidecar_grpc_port=main.grpc_port, sidecar_http_port=main.http_port)
            self.procs.append(Proc([sys.executable, "-m", "bench.floors", "grpc", str(ports["floor_grpc_port"])]))
            self.procs.append(Proc([sys.executable, "-m", "bench.floors", "http", str(ports["floor_http_port"])]))
            for port in (ports["floor_grpc_port"], ports["floor_http_port"]):  # a case must not start before them
                wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, 30, "floor")
            cfg = self.tmp / "envoy.yaml"
            cfg.write_text(yaml.safe_dump(envoy_config.build(ports, IDP, API, idp_ring.jwks())))
            envoy = Proc([envoy_binary(), "-c", str(cfg), "--concurrency", "1", "-l", "error",
                          "--base-id", str(ports["admin"])], log=self.tmp / "envoy.log")
            self.procs.append(envoy)
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{ports['admin']}/ready").status_code == 200, 30, "envoy")
            auth = {"authorization": f"Bearer {token}"}
            url = {name: f"http://127.0.0.1:{ports[name]}/" for name in ports}

            print(f"auth-sidecar bench: {self.d:g}s per case after {self.w:g}s warm-up", flush=True)
            # the proxy cases round-robin: with --repeat, slow drifts of a shared machine hit every
            # case alike, and each row is the median of its samples
            for rep in range(self.repeat):
                if self.repeat > 1:
                    print(f"  -- round {rep + 1} of {self.repeat}", flush=True)
                self.measure("envoy_noauth", lambda d: loaders.wrk(url["noauth"], d, headers=auth))
                self.measure("envoy_jwt_authn", lambda d: loaders.wrk(url["jwt_authn"], d, headers=auth))
                self.measure("sidecar_grpc_hit", lambda d: loaders.wrk(url["sidecar_grpc"], d, headers=auth))
                self.measure("sidecar_http_hit", lambda d: loaders.wrk(url["sidecar_http"], d, headers=auth))
                for mode in ("grpc", "http"):
                    row = f"sidecar_{mode}_miss"
                    if self.want(row):
                        try:
                            self.record(row, self.misses(row, url[f"sidecar_{mode}"], idp), "req/s")
                        except Exception as exc:
                            self.results[row] = {"value": None, "unit": "req/s", "error": str(exc)[:500]}
                self.measure("floor_grpc", lambda d: loaders.wrk(url["floor_grpc"], d, headers=auth))
                self.measure("floor_http", lambda d: loaders.wrk(url["floor_http"], d, headers=auth))

            body = grpc_body(self.tmp, token)
            check_url = "/envoy.service.auth.v3.Authorization/Check"
            two = None
            if self.want("h2load_grpc_workers2"):
                two = Sidecar(self.tmp, {**base_env, "AUTH_SIDECAR_STORE_URL": self.redis_url()}, workers=2, tag="w2")
                self.procs.append(two)
            spent: dict[str, tuple[float, float]] = {}

            def h2load(row: str, sidecar: Sidecar, d: float) -> float:
                """Also keeps the CPU µs per request of the sidecar's workers and of h2load."""
                pids = sidecar.worker_pids()
                before, loader = cpu_seconds(pids), resource.getrusage(resource.RUSAGE_CHILDREN)
                rate = loaders.h2load(f"http://127.0.0.1:{sidecar.grpc_port}{check_url}", body, d)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                n = max(rate * d, 1)
                spent[row] = ((cpu_seconds(pids) - before) / n * 1e6,
                              (after.ru_utime + after.ru_stime - loader.ru_utime - loader.ru_stime) / n * 1e6)
                return rate

            for rep in range(self.long_rounds):  # alternating: a drift of the machine hits both alike
                for row, sidecar in (("h2load_grpc_workers1", main), ("h2load_grpc_workers2", two)):
                    if sidecar is not None and self.want(row):
                        self.measure(row, lambda d: h2load(row, sidecar, d))
                        if "error" not in self.results[row]:  # the timed run's CPU, not the warm-up's
                            self.record(row + "_cpu", spent[row][0], "µs/req")
                            self.record(row + "_loader_cpu", spent[row][1], "µs/req")
            if two:
                two.stop()

            for rep in range(self.long_rounds):  # round-robin too: each row is the median of its rounds
                for row, name in (("latency_noauth", "noauth"), ("latency_grpc", "sidecar_grpc"),
                                  ("latency_http", "sidecar_http"), ("latency_floor_grpc", "floor_grpc"),
                                  ("latency_floor_http", "floor_http")):
                    if self.want(row):
                        try:
                            self.record_latency(row, *loaders.hey_latency(url[name], self.d, 1000, headers=auth))
                        except Exception as exc:
                            self.results[row] = {"value": None, "unit": "ms p99", "error": str(exc)[:500]}

            self.token_cases(main, base_env)
            if self.want("rss_100k"):
                n = 2000 if self.quick else 100_000
                fresh = Sidecar(self.tmp, {**base_env, "AUTH_SIDECAR_CACHE__MAX_ENTRIES": str(max(n, 1000))},
                                tag="rss")
                self.procs.append(fresh)
                asyncio.run(fill_cache(f"127.0.0.1:{fresh.grpc_port}", own(n, "rss")))
                self.record("rss_100k", rss_mb(fresh.pid), "MB", tokens=n)
                fresh.stop()
        finally:
            for proc in reversed(self.procs):
                proc.stop()
        return self.results

    def misses(self, row: str, url: str, idp: Minter) -> float:
        """Requests/s with every token new to the cache: the pool holds more tokens than the
        same mode's hit rate serves in the time (a token served twice would be a hit)."""
        hit = (self.results.get(row.replace("_miss", "_hit")) or {}).get("value") or 10_000
        n = 2000 if self.quick else int(hit * 1.25 * max(int(self.d), 1)) + 500
        tokens = idp(n, row)
        rate = loaders.wrk(url, self.d, script=token_lua(self.tmp, row, tokens))  # no warm-up: it would use tokens
        if not self.quick and rate * max(int(self.d), 1) > n:
            raise RuntimeError(f"{row}: {rate:.0f} req/s used up the pool of {n} tokens (the rest were hits)")
        return rate

    def token_cases(self, main: Sidecar, base_env: dict[str, str]) -> None:
        cheap = {"AUTH_SIDECAR_PASSWORD_HASHING__MEMORY_KIB": "1024", "AUTH_SIDECAR_PASSWORD_HASHING__TIME_COST": "1"}
        cc_body = ["grant_type=client_credentials"]
        if self.want("token_client_credentials"):
            c = setup_app(main.http, ["client_credentials"])
            self.measure("token_client_credentials", lambda d: loaders.wrk(
                main.http, d, script=post_lua(self.tmp, "cc", (c["client_id"], c["client_secret"]), cc_body)))
        pw_script = None
        if self.want("token_password"):
            c = setup_app(main.http, ["password"])
            body = ["grant_type=password&username=alice&password=correct+horse"]
            pw_script = post_lua(self.tmp, "pw", (c["client_id"], c["client_secret"]), body)
        pw_cpu: list[float] = []
        hash_cpu: list[float] = []

        def logins(d: float) -> float:
            pids = main.worker_pids()
            before = cpu_seconds(pids)
            rate = loaders.wrk(main.http, d, connections=8, script=pw_script)
            pw_cpu.append((cpu_seconds(pids) - before) / max(rate * d, 1) * 1000)
            return rate

        for rep in range(self.long_rounds):  # alternating: a drift of the machine hits the hash and us alike
            if pw_script:
                self.measure("token_password", logins)
                if "error" not in self.results["token_password"]:
                    self.record("token_password_cpu", pw_cpu[-1], "ms/login")  # of the timed run
            if self.want("argon2_alone"):
                self.measure("argon2_alone", lambda d: argon2_rate(d, cpu_ms=hash_cpu), "checks/s")
                if "error" not in self.results["argon2_alone"]:
                    self.record("argon2_cpu", hash_cpu[-1], "ms/check")
        # (row suffix, env, workers): the memory store lives in one process; with Redis shared
        # by all workers the service runs one worker per core, as a deployment on 2 cores would
        stores = [("", {}, 1)]
        if any(self.want(r) for r in ("token_client_credentials_redis", "token_refresh_redis")):
            stores.append(("_redis", {"AUTH_SIDECAR_STORE_URL": self.redis_url()}, 2))
        for suffix, env, workers in stores:
            if not (self.want("token_refresh" + suffix) or self.want("token_client_credentials" + suffix)):
                continue
            svc = Sidecar(self.tmp, {**base_env, **cheap, **env}, workers=workers, tag="token" + suffix)
            self.procs.append(svc)
            if suffix and self.want("token_client_credentials" + suffix):
                c = setup_app(svc.http, ["client_credentials"])
                self.measure("token_client_credentials" + suffix, lambda d: loaders.wrk(
                    svc.http, d, script=post_lua(self.tmp, "cc" + suffix, (c["client_id"], c["client_secret"]), cc_body)))
            if self.want("token_refresh" + suffix):
                try:
                    c = setup_app(svc.http, ["password", "refresh_token"])
                    pool = asyncio.run(refresh_pool(svc.http, c, int(self.d * 4500) + 100))
                    bodies = [f"grant_type=refresh_token&refresh_token={rt}" for rt in pool]
                    script = post_lua(self.tmp, "rt" + suffix, (c["client_id"], c["client_secret"]), bodies)
                    self.record("token_refresh" + suffix, loaders.wrk(svc.http, self.d, script=script), "req/s",
                                pool=len(pool))
                except Exception as exc:
                    self.results["token_refresh" + suffix] = {"value": None, "unit": "req/s", "error": str(exc)[:500]}
            svc.stop()


def ratios(r: dict) -> dict[str, float | None]:
    def v(k: str) -> float | None:
        return (r.get(k) or {}).get("value")

    def paired(a: str, b: str) -> list | None:
        """Both rows' per-round samples, when both ran in the same --repeat rounds."""
        sa, sb = (r.get(a) or {}).get("samples"), (r.get(b) or {}).get("samples")
        return list(zip(sa, sb)) if sa and sb and len(sa) == len(sb) else None

    def div(a: str, b: str) -> float | None:
        # rows of one round ran back to back: the median of the per-round ratios cancels drifts
        # of a shared machine that a ratio of the two medians keeps
        if pairs := paired(a, b):
            return round(statistics.median(x / y for x, y in pairs if x and y), 3)
        x, y = v(a), v(b)
        return round(x / y, 3) if x and y else None

    out = {
        "http_hit / jwt_authn (>= 0.85)": div("sidecar_http_hit", "envoy_jwt_authn"),
        "grpc_hit / bare grpc.aio floor (>= 0.85)": div("sidecar_grpc_hit", "floor_grpc"),
        "http_hit / bare ASGI floor": div("sidecar_http_hit", "floor_http"),
        "grpc_miss / grpc_hit (>= 0.5)": div("sidecar_grpc_miss", "sidecar_grpc_hit"),
        "http_miss / http_hit (>= 0.5)": div("sidecar_http_miss", "sidecar_http_hit"),
        "h2load workers2 / workers1 (>= 1.6)": div("h2load_grpc_workers2", "h2load_grpc_workers1"),
        "h2load: sidecar CPU per request, workers2 / workers1": div("h2load_grpc_workers2_cpu",
                                                                    "h2load_grpc_workers1_cpu"),
        "password / argon2 alone (>= 0.9)": div("token_password", "argon2_alone"),
        "argon2's share of a login's CPU": div("argon2_cpu", "token_password_cpu"),
    }
    for mode in ("grpc", "http", "floor_grpc", "floor_http"):
        a, b = r.get(f"latency_{mode}") or {}, r.get("latency_noauth") or {}
        if a.get("p99_ms") is not None and b.get("p99_ms") is not None:
            target = "" if mode.startswith("floor") else ", <= 1"
            pairs = paired(f"latency_{mode}", "latency_noauth")
            for i, name in ((1, "p99"), (0, "p50")):
                if pairs:
                    added = statistics.median(x[i] - y[i] for x, y in pairs)
                else:
                    added = a[f"{name}_ms"] - b[f"{name}_ms"]
                out[f"added {name} at 1000 req/s, {mode} (ms{target if name == 'p99' else ''})"] = round(added, 3)
    return out


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
    bench = Bench(args.duration, args.warmup, args.quick, set(args.only.split(",")) if args.only else None, args.alg,
                  args.repeat)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results = bench.run()
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
