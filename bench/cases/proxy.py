"""Requests/s through Envoy (wrk, 32 connections): no auth, Envoy's own jwt_authn without and
with its JWT cache, the sidecar's gRPC and HTTP modes on a cached token and on tokens new to
the cache, the two transport floors (a bare grpc.aio servicer, a bare ASGI app) and the two
ceilings (constant C servers: nghttpd for gRPC, with an empty CheckResponse and with the sidecar's
own allow, nginx for HTTP; bench/ceilings.py). Round-robin: with --repeat,
slow drifts of a shared machine hit every case alike, and each row is the median of its samples."""

from __future__ import annotations

from bench import loaders
from bench.cases import dpop
from bench.payloads import token_lua
from bench.recorder import Recorder
from bench.stack import Stack

HITS = (("envoy_noauth", "noauth"), ("envoy_jwt_authn", "jwt_authn"), ("envoy_jwt_authn_cached", "jwt_authn_cached"),
        ("sidecar_grpc_hit", "sidecar_grpc"), ("sidecar_http_hit", "sidecar_http"),
        ("sidecar_grpc_hit_workers2", "sidecar_grpc_w2"))
FLOORS = (("floor_grpc", "floor_grpc"), ("floor_http", "floor_http"))
CEILINGS = (("ceiling_grpc", "ceiling_grpc"), ("ceiling_grpc_allow", "ceiling_grpc_allow"),
            ("ceiling_http", "ceiling_http"))


def run(rec: Recorder, stack: Stack) -> None:
    for rep in range(rec.repeat):
        if rec.repeat > 1:
            print(f"  -- round {rep + 1} of {rec.repeat}", flush=True)
        for row, listener in HITS:
            rec.measure(row, lambda d: loaders.wrk(stack.url[listener], d, headers=stack.auth))
        dpop.measure_round(rec, stack)  # DPoP-bound Checks (bench/cases/dpop.py), beside the bearer hits
        for mode in ("grpc", "http"):
            row = f"sidecar_{mode}_miss"
            if rec.want(row):
                with rec.failing(row, "req/s"):
                    rec.record(row, misses(rec, stack, row, stack.url[f"sidecar_{mode}"]), "req/s")
        for row, listener in FLOORS:
            rec.measure(row, lambda d: loaders.wrk(stack.url[listener], d, headers=stack.auth))
        for row, listener in CEILINGS:
            rec.measure(row, lambda d: ceiling(stack, row, listener, d))


def ceiling(stack: Stack, row: str, listener: str, seconds: float) -> float:
    if row in stack.missing:  # its server is not installed: the row fails, the run goes on
        raise RuntimeError(stack.missing[row])
    return loaders.wrk(stack.url[listener], seconds, headers=stack.auth)


def misses(rec: Recorder, stack: Stack, row: str, url: str) -> float:
    """Requests/s with every token new to the cache: the pool holds more tokens than the
    same mode's hit rate serves in the time (a token served twice would be a hit)."""
    hit = (rec.results.get(row.replace("_miss", "_hit")) or {}).get("value") or 10_000
    n = 2000 if rec.quick else int(hit * 1.25 * max(int(rec.d), 1)) + 500
    tokens = stack.idp(n, row)
    rate = loaders.wrk(url, rec.d, script=token_lua(stack.tmp, row, tokens))  # no warm-up: it would use tokens
    if not rec.quick and rate * max(int(rec.d), 1) > n:
        raise RuntimeError(f"{row}: {rate:.0f} req/s used up the pool of {n} tokens (the rest were hits)")
    return rate
