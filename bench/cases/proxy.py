"""Requests/s through Envoy (wrk, 32 connections): no auth, Envoy's own jwt_authn without and
with its JWT cache, the sidecar's gRPC and HTTP modes on a cached token and on tokens new to
the cache, the two transport floors (a bare grpc.aio servicer, a bare ASGI app) and the two
ceilings (constant C servers: nghttpd for gRPC, with an empty CheckResponse and with the sidecar's
own allow, nginx for HTTP; bench/ceilings.py). Round-robin: with --repeat, each hit is measured
beside its ceilings and the order reverses every other round, so slow drifts of a shared machine
hit a ratio's two rows alike; each row is the median of its samples."""

from __future__ import annotations

from bench import loaders
from bench.cases import dpop
from bench.payloads import token_lua
from bench.recorder import Recorder
from bench.stack import Stack

# one round, in order: each sidecar hit right beside the rows its ratios are taken against
# (a shared host drifts within a round; neighbours drift alike), reversed every other round
WRK_ROWS = {"envoy_noauth": "noauth", "envoy_jwt_authn": "jwt_authn", "envoy_jwt_authn_cached": "jwt_authn_cached",
            "sidecar_http_hit": "sidecar_http", "sidecar_grpc_hit": "sidecar_grpc",
            "sidecar_grpc_hit_workers2": "sidecar_grpc_w2", "floor_grpc": "floor_grpc", "floor_http": "floor_http"}
CEILINGS = {"ceiling_http": "ceiling_http", "ceiling_grpc": "ceiling_grpc", "ceiling_grpc_allow": "ceiling_grpc_allow"}
ORDER = ("envoy_noauth", "envoy_jwt_authn", "envoy_jwt_authn_cached", "sidecar_http_hit", "ceiling_http",
         "sidecar_grpc_hit", "ceiling_grpc", "ceiling_grpc_allow", "sidecar_grpc_hit_workers2", "dpop",
         "sidecar_grpc_miss", "sidecar_http_miss", "floor_grpc", "floor_http")


def run(rec: Recorder, stack: Stack) -> None:
    for rep in range(rec.repeat):
        if rec.repeat > 1:
            print(f"  -- round {rep + 1} of {rec.repeat}", flush=True)
        for step in ORDER if rep % 2 == 0 else ORDER[::-1]:  # the first round sizes the misses' pools on the hits
            one(rec, stack, step)


def one(rec: Recorder, stack: Stack, step: str) -> None:
    if step in WRK_ROWS:
        rec.measure(step, lambda d: loaders.wrk(stack.url[WRK_ROWS[step]], d, headers=stack.auth))
    elif step in CEILINGS:
        rec.measure(step, lambda d: ceiling(stack, step, CEILINGS[step], d))
    elif step == "dpop":  # DPoP-bound Checks (bench/cases/dpop.py), beside the bearer hits
        dpop.measure_round(rec, stack)
    elif rec.want(step):  # a miss row
        with rec.failing(step, "req/s"):
            rec.record(step, misses(rec, stack, step, stack.url[step.replace("_miss", "")]), "req/s")


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
