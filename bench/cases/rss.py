"""Resident memory of a fresh sidecar whose cache holds 100,000 verified tokens (2,000 with --quick)."""

from __future__ import annotations

import asyncio

from bench.procstat import rss_mb
from bench.recorder import Recorder
from bench.stack import Stack


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


def run(rec: Recorder, stack: Stack) -> None:
    if not rec.want("rss_100k"):
        return
    n = 2000 if rec.quick else 100_000
    fresh = stack.sidecar(AUTH_SIDECAR_CACHE__MAX_ENTRIES=str(max(n, 1000)))
    asyncio.run(fill_cache(fresh.grpc, stack.own(n, "rss")))
    rec.record("rss_100k", rss_mb(fresh.pid), "MB", tokens=n)
    fresh.stop()
