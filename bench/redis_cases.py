"""Redis at scale: `python -m bench.redis_cases` (CPU heavy, ~4-5 min on 2 cores).

Starts on loopback a single Redis, a Redis Cluster (3 masters, 3 replicas) and a Sentinel set
(master, replica, 3 sentinels) with the fixtures the tests use too (harness/redis_*.py), then:

- refresh_single / refresh_cluster: refresh grants per second (wrk, 32 connections, two
  workers sharing the store, a pool of refresh tokens each used once), in alternate rounds;
  medians and their ratio.
- failover: a refresh load (8 chains) on the Sentinel set, the master killed: answers that
  were not 200, how long the 503s lasted, broken chains.
- propagation: /oauth/revoke on replica A → first 401 on replica B for a token B had cached
  (pub/sub), over 1,000 revocations: p50/p99.
- memory: Redis memory per live refresh family over 100,000 families (used_memory delta and
  MEMORY USAGE of one family's keys), fresh and after one rotation.

Prints one JSON document and writes bench/results/redis_cases.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import redis as redis_lib

from authz.keys import write_new_key
from bench import loaders
from bench.payloads import post_lua
from bench.procstat import cpu_seconds
from bench.stack import ADMIN, CHEAP_HASH, new_app
from harness.net import free_port, wait_until
from harness.oauth import App
from harness.processes import ROOT, Proc, Sidecar
from harness.redis_cluster import RedisCluster
from harness.redis_load import RefreshChains
from harness.redis_sentinel import RedisSentinelSet
from sidecar.oauth import successor
from sidecar.oauth.issuer import new_refresh_token, parse_refresh_token
from sidecar.store.redis_layout import family_key, refresh_key
from sidecar.store.redis_store import RedisStore

WARM = 3000  # refresh tokens for the warm-up second of each round


async def _fill(url: str, client: App, n: int) -> list[str]:
    """n refresh families written straight to the store (a login each would cost argon2)."""
    store = RedisStore.from_url(url)
    tokens: list[str] = []
    expires = time.time() + 3600
    try:
        for start in range(0, n, 500):
            batch = [new_refresh_token(client_id=client.client_id, tenant="bench", subject="bench-user",
                                 scope="read write", family_expires_at=expires) for _ in range(min(500, n - start))]
            await asyncio.gather(*(store.put_refresh(record, (f"j-{record.family}", expires))
                                   for _, record in batch))
            tokens += [rt for rt, _ in batch]
    finally:
        await store.close()
    return tokens


def _sidecar(tmp: Path, env: dict, url: str, workers: int = 1) -> Sidecar:
    return Sidecar({**env, "AUTH_SIDECAR_STORE_URL": url}, args=["--workers", str(workers)], tmp=tmp).start()


def refresh_rounds(tmp: Path, env: dict, stores: dict[str, tuple[str, list[int]]], rounds: int,
                   duration: float) -> dict:
    """Refresh grants/s per store (url, Redis pids) in alternate rounds, and the CPU each
    request cost the sidecar's workers and the Redis processes (all on the same cores here)."""
    sidecars = {name: _sidecar(tmp, env, url, workers=2) for name, (url, _) in stores.items()}
    rates: dict[str, list[float]] = {name: [] for name in stores}
    cpu: dict[str, dict[str, list[float]]] = {name: {"sidecar": [], "redis": []} for name in stores}
    try:
        clients = {name: new_app(s.http, ["password", "refresh_token"]) for name, s in sidecars.items()}
        for _ in range(rounds):
            for name, (url, redis_pids) in stores.items():
                pool = asyncio.run(_fill(url, clients[name], WARM + int(duration * 2500)))
                bodies = [f"grant_type=refresh_token&refresh_token={rt}" for rt in pool]
                auth = (clients[name].client_id, clients[name].client_secret)
                warm = post_lua(tmp, f"rt-{name}-warm", auth, bodies[:WARM])
                loaders.wrk(sidecars[name].http, 1, script=warm)  # one second of warm-up, its own tokens
                timed = post_lua(tmp, f"rt-{name}", auth, bodies[WARM:])
                workers = sidecars[name].worker_pids()
                before = (cpu_seconds(workers), cpu_seconds(redis_pids), time.monotonic())
                rate = loaders.wrk(sidecars[name].http, duration, script=timed)
                served = rate * (time.monotonic() - before[2])
                rates[name].append(rate)
                cpu[name]["sidecar"].append((cpu_seconds(workers) - before[0]) / served * 1e6)
                cpu[name]["redis"].append((cpu_seconds(redis_pids) - before[1]) / served * 1e6)
    finally:
        for s in sidecars.values():
            s.stop()
    out: dict = {name: {"median": statistics.median(r), "rounds": [round(x) for x in r],
                        "sidecar_cpu_us_per_req": round(statistics.median(cpu[name]["sidecar"])),
                        "redis_cpu_us_per_req": round(statistics.median(cpu[name]["redis"]))}
                 for name, r in rates.items()}
    out["cluster_vs_single"] = round(out["cluster"]["median"] / out["single"]["median"], 3)
    out["cluster_vs_single_paired"] = round(statistics.median(
        c / s for c, s in zip(rates["cluster"], rates["single"])), 3)
    return out


def failover(tmp: Path, env: dict, sentinels: RedisSentinelSet) -> dict:
    svc = _sidecar(tmp, env, sentinels.url)
    try:
        apps = [new_app(svc.http, ["password", "refresh_token"]) for _ in range(8)]
        load = RefreshChains(svc.http, apps).start()
        wait_until(lambda: min(load.rotations()) >= 20, 30, "chains rotating")
        before = sum(load.rotations())
        old = sentinels.master_port()
        killed = time.monotonic()
        sentinels.kill(old)
        not_ready = []
        wait_until(lambda: sentinels.master_port() != old, 60, "new master")
        promoted = time.monotonic()
        while True:  # readiness comes back
            ok = httpx.get(svc.http + "/readyz", timeout=2).status_code == 200
            if ok:
                break
            not_ready.append(time.monotonic())
            time.sleep(0.05)
        ready = time.monotonic()
        floor = load.rotations()
        wait_until(lambda: load.broken() or all(n >= f + 20 for n, f in zip(load.rotations(), floor)), 60,
                 "chains rotating again")
        load.stop()
        answers = [(t, status) for chain in load.chains for t, status, _ in chain.answers if t >= killed]
        errors = [(t, s) for t, s in answers if s != 200]
        statuses: dict[str, int] = {}
        for _, s in errors:
            statuses[str(s)] = statuses.get(str(s), 0) + 1
        return {"rotations_before": before, "errors": statuses,
                "error_window_s": round(max(t for t, _ in errors) - min(t for t, _ in errors), 2) if errors else 0,
                "kill_to_promotion_s": round(promoted - killed, 2), "kill_to_ready_s": round(ready - killed, 2),
                "broken_chains": load.broken(),
                "retry_after_on_every_503": all(r for _, r in load.unavailable())}
    finally:
        svc.stop()


def propagation(tmp: Path, env: dict, url: str, n: int) -> dict:
    a, b = _sidecar(tmp, env, url), _sidecar(tmp, env, url)
    try:
        c = new_app(a.http, ["client_credentials"])
        auth = (c.client_id, c.client_secret)
        with httpx.Client(base_url=a.http, auth=auth) as on_a, httpx.Client(base_url=b.http) as on_b:
            tokens = [on_a.post("/oauth/token", data={"grant_type": "client_credentials"}).json()["access_token"]
                      for _ in range(n)]
            for t in tokens:  # B caches each: only pub/sub can tell it
                assert on_b.get("/ext_authz/x", headers={"authorization": f"Bearer {t}"}).status_code == 200
            times, revoke_ms = [], []
            for t in tokens:
                header = {"authorization": f"Bearer {t}"}
                started = time.perf_counter()
                assert on_a.post("/oauth/revoke", data={"token": t}).status_code == 200
                revoke_ms.append((time.perf_counter() - started) * 1000)
                while on_b.get("/ext_authz/x", headers=header).status_code != 401:
                    if time.perf_counter() - started > 5:
                        raise RuntimeError("revocation did not reach replica B within 5 s")
                times.append((time.perf_counter() - started) * 1000)
        times.sort()
        return {"n": n, "p50_ms": round(times[n // 2], 2), "p99_ms": round(times[int(n * 0.99) - 1], 2),
                "max_ms": round(times[-1], 2), "revoke_answer_p50_ms": round(statistics.median(revoke_ms), 2)}
    finally:
        a.stop()
        b.stop()


async def memory(url: str, n: int) -> dict:
    """Redis memory per family: n families as a login leaves them (one refresh token, one
    access jti), then 5,000 of them rotated once (two tokens, two jtis, the grace slot).
    used_memory is read with the writing client's connections closed (their buffers are not
    data)."""
    plain = redis_lib.Redis.from_url(url)
    plain.flushall()
    expires = time.time() + 86_400
    base = plain.info("memory")["used_memory"]
    store = RedisStore.from_url(url)
    families = []
    for start in range(0, n, 500):
        batch = [new_refresh_token(client_id="client-0123456789abcdef", tenant="tenant-1", subject="user-0123456789abcdef",
                             scope="openid read write offline_access", family_expires_at=expires)
                 for _ in range(min(500, n - start))]
        await asyncio.gather(*(store.put_refresh(r, (os.urandom(16).hex(), expires)) for _, r in batch))
        families += batch
    await store.close()
    fresh = (plain.info("memory")["used_memory"] - base) / n

    def usage(record, *digests: str) -> int:
        keys = [refresh_key(record.family, d) for d in (record.digest, *digests)]
        keys += [family_key(record.family, "jtis"), family_key(record.family, "grace")]
        return sum(plain.memory_usage(k, samples=0) or 0 for k in keys)
    fresh_usage = statistics.mean(usage(r) for _, r in families[:1000])
    successors = {}
    rotated_n = min(5_000, n)
    before = plain.info("memory")["used_memory"]
    store = RedisStore.from_url(url)
    for start in range(0, rotated_n, 500):
        jobs = []
        for rt, old in families[start:start + 500]:
            secret = parse_refresh_token(rt).secret
            new_rt, new = new_refresh_token(client_id=old.client_id, tenant=old.tenant, subject=old.subject,
                                      scope=old.scope, family_expires_at=expires, family=old.family)
            successors[old.family] = new.digest
            jobs.append(store.rotate_refresh(old, new, (os.urandom(16).hex(), expires), time.time(), grace=300,
                                             sealed=successor.seal(secret, old.family, new_rt)))
        assert {r.outcome for r in await asyncio.gather(*jobs)} == {"ok"}
    await store.close()
    per_rotation = (plain.info("memory")["used_memory"] - before) / rotated_n
    rotated_usage = statistics.mean(usage(r, successors[r.family]) for _, r in families[:1000])
    plain.flushall()
    return {"families": n, "fresh_used_memory_bytes": round(fresh), "fresh_memory_usage_bytes": round(fresh_usage),
            "rotation_adds_used_memory_bytes": round(per_rotation),
            "rotated_once_memory_usage_bytes": round(rotated_usage)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.redis_cases")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per refresh round")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--revocations", type=int, default=1000)
    p.add_argument("--families", type=int, default=100_000)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    write_new_key(tmp / "keys", "ES256")
    env = {"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys"), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN,
           "AUTH_SIDECAR_LOG_LEVEL": "warning", **CHEAP_HASH}
    port = free_port()
    single = Proc(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"])
    wait_until(lambda: redis_lib.Redis(port=port).ping(), 10, "redis")
    single_url = f"redis://127.0.0.1:{port}/0"
    cluster = RedisCluster(tmp / "cluster").start()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": {}}

    def case(name: str, fn) -> None:
        started = time.monotonic()
        results[name] = fn()
        results["seconds"][name] = round(time.monotonic() - started)
        print(name, json.dumps(results[name]), flush=True)
    try:
        stores = {"single": (single_url, [single.pid]), "cluster": (cluster.url, [p.pid for p in cluster.procs.values()])}
        case("refresh", lambda: refresh_rounds(tmp, env, stores, args.rounds, args.duration))
        cluster.stop()
        case("propagation", lambda: propagation(tmp, env, single_url, args.revocations))
        case("memory", lambda: asyncio.run(memory(single_url, args.families)))
        sentinels = RedisSentinelSet(tmp / "sentinel").start()
        try:
            case("failover", lambda: failover(tmp, env, sentinels))
        finally:
            sentinels.stop()
    finally:
        cluster.stop()
        single.stop()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "redis_cases.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
