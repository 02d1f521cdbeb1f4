"""The token service: client_credentials, token exchange and password grants on the main sidecar (the
password grant alternating with argon2id alone, a drift of the machine hits both alike), and
refresh grants on the memory store (one worker) and on Redis (one worker per core, as a
deployment on 2 cores would run), the password hash at its cheapest there."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

import httpx

from bench import loaders
from bench.payloads import post_lua
from bench.procstat import cpu_seconds
from bench.recorder import Recorder
from bench.stack import ADMIN, CHEAP_HASH, Stack, new_app
from harness.oauth import App, Admin, login
from harness.processes import Sidecar

CC_BODY = ["grant_type=client_credentials"]
PW_BODY = ["grant_type=password&username=alice&password=correct+horse"]


async def refresh_pool(base: str, app: App, n: int) -> list[str]:
    """n refresh tokens, one password login each."""
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=base, auth=(app.client_id, app.client_secret), timeout=30) as c:
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


def wrk_posts(stack: Stack, base: str, name: str, app: App, bodies: list[str], **kw) -> Callable[[float], float]:
    """wrk posting `bodies` in turn to /oauth/token as the app's client, for `d` seconds."""
    script = post_lua(stack.tmp, name, (app.client_id, app.client_secret), bodies)
    return lambda d: loaders.wrk(base, d, script=script, **kw)


def run(rec: Recorder, stack: Stack) -> None:
    main = stack.main
    if rec.want("token_client_credentials"):
        cc = wrk_posts(stack, main.http, "cc", new_app(main.http, ["client_credentials"]), CC_BODY)
        rec.measure("token_client_credentials", cc)
    if rec.want("token_exchange"):
        with rec.failing("token_exchange", "req/s"):
            rec.measure("token_exchange", exchanges(stack, main))
    logins(rec, stack)
    stores = [("", {}, 1)]  # (row suffix, env, workers)
    if any(rec.want(r) for r in ("token_client_credentials_redis", "token_refresh_redis")):
        stores.append(("_redis", {"AUTH_SIDECAR_STORE_URL": stack.redis_url()}, 2))
    for suffix, env, workers in stores:
        if rec.want("token_refresh" + suffix) or rec.want("token_client_credentials" + suffix):
            store_rows(rec, stack, suffix, stack.sidecar(workers, **CHEAP_HASH, **env))


def exchanges(stack: Stack, svc: Sidecar) -> Callable[[float], float]:
    """RFC 8693 exchanges of one user's access token (of a refresh family: each exchanged token
    joins it) by a service client for audience `bench-b`: subject token verified, signed anew."""
    app = new_app(svc.http, ["password", "refresh_token"])
    subject = login(svc.http, app).json()["access_token"]
    service = Admin(svc.http, ADMIN).post(f"/admin/tenants/{app.tenant}/clients", {
        "name": "service-a", "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        "scopes": ["read", "write"], "exchange_audiences": ["bench-b"]})
    body = ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=bench-b"
            f"&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&subject_token={subject}")
    exchanger = App(app.tenant, service["client_id"], service["client_secret"], "", "", "")
    return wrk_posts(stack, svc.http, "exchange", exchanger, [body])


def logins(rec: Recorder, stack: Stack) -> None:
    """token_password (8 connections) and its CPU per login, alternating with argon2_alone."""
    main, pw_cpu, hash_cpu = stack.main, [], []
    post = None
    if rec.want("token_password"):
        post = wrk_posts(stack, main.http, "pw", new_app(main.http, ["password"]), PW_BODY, connections=8)

    def timed(d: float) -> float:
        pids = main.worker_pids()
        before = cpu_seconds(pids)
        rate = post(d)
        pw_cpu.append((cpu_seconds(pids) - before) / max(rate * d, 1) * 1000)
        return rate

    for _ in range(rec.long_rounds):
        if post:
            rec.measure("token_password", timed)
            if rec.ok("token_password"):
                rec.record("token_password_cpu", pw_cpu[-1], "ms/login")  # of the timed run
        if rec.want("argon2_alone"):
            rec.measure("argon2_alone", lambda d: argon2_rate(d, cpu_ms=hash_cpu), "checks/s")
            if rec.ok("argon2_alone"):
                rec.record("argon2_cpu", hash_cpu[-1], "ms/check")


def store_rows(rec: Recorder, stack: Stack, suffix: str, svc: Sidecar) -> None:
    """client_credentials (on Redis) and refresh grants, each refresh token used once."""
    if suffix and rec.want("token_client_credentials" + suffix):
        app = new_app(svc.http, ["client_credentials"])
        rec.measure("token_client_credentials" + suffix, wrk_posts(stack, svc.http, "cc" + suffix, app, CC_BODY))
    row = "token_refresh" + suffix
    if rec.want(row):
        with rec.failing(row, "req/s"):
            app = new_app(svc.http, ["password", "refresh_token"])
            pool = asyncio.run(refresh_pool(svc.http, app, int(rec.d * 4500) + 100))
            bodies = [f"grant_type=refresh_token&refresh_token={rt}" for rt in pool]
            rec.record(row, wrk_posts(stack, svc.http, "rt" + suffix, app, bodies)(rec.d), "req/s",
                       pool=len(pool))
    svc.stop()
